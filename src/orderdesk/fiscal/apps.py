from django.apps import AppConfig


class FiscalConfig(AppConfig):
    name = "orderdesk.fiscal"
    label = "fiscal"
    verbose_name = "Fiscal receipts"

    def ready(self) -> None:
        from orderdesk.fiscal import mail  # noqa: F401  registers the e-receipt outbox handler
