from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from orderdesk.core.models import ApiKey, OutboxMessage, User


@admin.register(User)
class PersonAdmin(UserAdmin):
    list_display = ["email", "role", "first_name", "last_name", "is_active"]
    list_filter = ["role", "is_active"]
    ordering = ["email"]
    fieldsets = [
        *UserAdmin.fieldsets,
        ("orderdesk", {"fields": ["role", "language", "can_edit_quick_orders"]}),
    ]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "role", "prefix", "created_at", "revoked_at"]
    readonly_fields = ["prefix", "key_hash", "created_at"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "topic", "state", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["topic", "state"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
