from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "orderdesk.exchange"
    label = "exchange"
    verbose_name = "1C exchange"
