from django.contrib import admin

from orderdesk.payments.models import Document, PaymentEntry


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["number", "kind", "order", "state", "amount", "method", "posted_at"]
    list_filter = ["kind", "state", "method"]
    readonly_fields = [f.name for f in Document._meta.fields]


@admin.register(PaymentEntry)
class PaymentEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "document", "is_refund", "amount", "method", "receipt_owed", "created_at"]
    readonly_fields = [f.name for f in PaymentEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
