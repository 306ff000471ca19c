from django.apps import AppConfig


class AcquiringConfig(AppConfig):
    name = "orderdesk.acquiring"
    label = "acquiring"
    verbose_name = "Online payments"

    def ready(self) -> None:
        from orderdesk.acquiring import mail  # noqa: F401  registers the payment-link mail handler
