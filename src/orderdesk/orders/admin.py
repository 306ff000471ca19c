from django.contrib import admin

from orderdesk.orders.models import ShopSettings, StatusDefinition


@admin.register(StatusDefinition)
class StatusDefinitionAdmin(admin.ModelAdmin):
    list_display = ["code", "name_ru", "name_en", "position", "is_final", "hands_over_goods"]
    readonly_fields = ["code"]  # transitions in rules.py refer to the codes

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ShopSettings)
class ShopSettingsAdmin(admin.ModelAdmin):
    list_display = ["default_site_status"]

    def has_add_permission(self, request):
        return not ShopSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
