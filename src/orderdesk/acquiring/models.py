"""Payment links (R11): our payment intents at the acquirer, and the notifications it sends."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 2}


class PaymentLink(models.Model):
    """One payment the customer is asked to make online. Its id makes the acquirer's
    Idempotence-Key, so a retried creation never makes a second payment."""

    class Method(models.TextChoices):
        CARD = "online", _("payment link")
        SBP = "sbp", _("SBP")

    class State(models.TextChoices):
        CREATED = "created", _("not yet at the acquirer")
        PENDING = "pending", _("waiting for the customer")
        PAID = "paid", _("paid")
        CANCELED = "canceled", _("cancelled or expired")
        MISMATCH = "mismatch", _("paid with another amount: a manager must look")

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payment_links")
    amount = models.DecimalField(**MONEY)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.CARD)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CREATED)
    acquirer_payment_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    confirmation_url = models.URLField(max_length=500, blank=True)
    last_error = models.TextField(blank=True)
    flag = models.TextField(blank=True)  # why a manager must look (B12)
    document = models.OneToOneField("payments.Document", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="payment_link")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    @property
    def idempotence_key(self) -> str:
        return f"orderdesk-link-{self.pk}"


class AcquirerNotification(models.Model):
    """Every notification that reached the webhook, trusted or not, as received."""

    received_at = models.DateTimeField(default=timezone.now)
    source_ip = models.GenericIPAddressField(null=True)
    event = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    body = models.JSONField(default=dict)
    outcome = models.CharField(max_length=60)
