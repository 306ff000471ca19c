from django.contrib import admin

from orderdesk.fiscal.models import Receipt, ReceiptLine, Register, Shift


@admin.register(Register)
class RegisterAdmin(admin.ModelAdmin):
    """Cash → FR directory → FR card."""

    list_display = ["name", "driver", "is_online", "itemized_final", "taxation", "company_inn", "active"]
    list_filter = ["driver", "is_online", "active"]


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    list_display = ["register", "number", "opened_at", "opened_by", "closed_at"]
    list_filter = ["register"]
    readonly_fields = [f.name for f in Shift._meta.fields]


class ReceiptLineInline(admin.TabularInline):
    model = ReceiptLine
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in ReceiptLine._meta.fields]


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    """Receipts are read here, never edited: they are fiscal documents."""

    list_display = ["id", "order", "purpose", "total", "state", "attempts", "fd_number", "register"]
    list_filter = ["state", "purpose", "register"]
    readonly_fields = [f.name for f in Receipt._meta.fields]
    inlines = [ReceiptLineInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
