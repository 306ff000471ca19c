from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orderdesk.orders"
    label = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from orderdesk.orders import notifications  # noqa: F401  registers the outbox handler
