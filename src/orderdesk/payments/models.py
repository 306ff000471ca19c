"""Documents made «based on» an order (S7, S8) and the payment ledger they post."""

from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.fiscal.rules import PayerKind, PayMethod

MONEY = {"max_digits": 14, "decimal_places": 2}


class Document(models.Model):
    """A cash receipt order (ПКО), a non-cash receipt, a refund, or a sale of goods and services.
    Drafts are edited freely; posting applies the effect, un-posting reverses it (and a reversal of
    money with a printed receipt prints the refund receipt, B4)."""

    class Kind(models.TextChoices):
        CASH_RECEIPT = "cash_receipt", _("cash receipt order")
        NONCASH_RECEIPT = "noncash_receipt", _("non-cash receipt")
        REFUND = "refund", _("refund to the customer")
        SALE = "sale", _("sales of goods and services")

    class State(models.TextChoices):
        DRAFT = "draft", _("draft")
        POSTED = "posted", _("posted")
        UNPOSTED = "unposted", _("posting cancelled")

    number = models.CharField(_("number"), max_length=20, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="documents")
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.DRAFT)
    amount = models.DecimalField(_("amount"), **MONEY, default=Decimal("0.00"))
    method = models.CharField(_("payment method"), max_length=20, choices=[(m.value, m.value) for m in PayMethod],
                              blank=True)
    payer_kind = models.CharField(_("payer"), max_length=12, choices=[(p.value, p.value) for p in PayerKind],
                                  default=PayerKind.PERSON)
    register = models.ForeignKey("fiscal.Register", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    acquirer_payment_id = models.CharField(max_length=64, blank=True)  # SBP and online payments
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200)
    posted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("document")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} №{self.number}"


class PaymentEntry(models.Model):
    """The ledger: money in (a posted receipt document) or back out (a refund or a reversal).
    Rows are never edited; the order's payment status is recomputed from them."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payment_entries")
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="entries",
                                 db_index=False)  # the unique (document, direction) leads with it
    is_refund = models.BooleanField(default=False)
    amount = models.DecimalField(**MONEY)  # always positive; is_refund tells the direction
    method = models.CharField(max_length=20, choices=[(m.value, m.value) for m in PayMethod])
    payer_kind = models.CharField(max_length=12, choices=[(p.value, p.value) for p in PayerKind])
    receipt_owed = models.BooleanField(default=True)  # False for B5 bank transfers from companies
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["document", "is_refund"], name="one_entry_per_document_direction"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_entry_amount_positive"),
        ]
