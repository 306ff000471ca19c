"""Fiscal registers (the FR directory), their shifts, and the receipts they register."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.fiscal.codes import Measure, PaymentMethod, Settlement, Subject, Taxation, Vat
from orderdesk.fiscal.rules import Purpose

MONEY = {"max_digits": 14, "decimal_places": 2}


class Register(models.Model):
    """A card of the FR directory (Cash → FR directory → FR card). A cash desk prints on its
    register; the online register serves e-receipts for money taken away from a cash desk."""

    class Driver(models.TextChoices):
        EMULATOR = "emulator", _("emulator")
        ATOL_WEB = "atol_web", _("ATOL driver web server")
        ATOL_ONLINE = "atol_online", _("ATOL Online (cloud)")

    name = models.CharField(_("name"), max_length=100)
    driver = models.CharField(_("driver"), max_length=20, choices=Driver.choices, default=Driver.EMULATOR)
    # Driver connection: base_url, login, password, group_code, timeouts; the emulator's "offline" switch.
    connection = models.JSONField(_("connection"), default=dict, blank=True)
    is_online = models.BooleanField(_("online register for e-receipts"), default=False)
    itemized_final = models.BooleanField(_("itemized final receipts"), default=True)
    taxation = models.CharField(_("taxation system"), max_length=20, choices=[(t.value, t.value) for t in Taxation],
                                default=Taxation.OSN)
    company_inn = models.CharField(_("company INN"), max_length=12)
    company_email = models.EmailField(_("company e-mail"))
    payment_address = models.CharField(_("payment address"), max_length=300)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("fiscal register")
        verbose_name_plural = _("fiscal registers")

    def __str__(self) -> str:
        return self.name


class Shift(models.Model):
    """B8: a cash desk's shift; money is taken only while one is open."""

    register = models.ForeignKey(Register, on_delete=models.PROTECT, related_name="shifts")
    number = models.PositiveIntegerField()
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.CharField(max_length=200)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=200, blank=True)
    z_report = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["register"], condition=Q(closed_at__isnull=True), name="one_open_shift_per_register"),
            models.UniqueConstraint(fields=["register", "number"], name="shift_number_unique"),
        ]


class Receipt(models.Model):
    """One fiscal document owed by a change to an order, from the moment the change is committed
    until the register has fiscalised it (B6: written with the payment, registered by the worker)."""

    class State(models.TextChoices):
        PENDING = "pending", _("waiting for the register")
        REGISTERING = "registering", _("registering")
        REGISTERED = "registered", _("registered")
        FAILED = "failed", _("failed")

    uuid = models.CharField(max_length=36, unique=True)  # the idempotency key every register protocol offers
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="receipts")
    entry = models.ForeignKey("payments.PaymentEntry", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="receipts", db_index=False)  # one_receipt_per_payment indexes it
    register = models.ForeignKey(Register, on_delete=models.PROTECT, related_name="receipts", db_index=False)
    shift = models.ForeignKey(Shift, on_delete=models.PROTECT, null=True, blank=True, related_name="receipts")
    purpose = models.CharField(max_length=20, choices=[(p.value, p.value) for p in Purpose])
    settlement = models.PositiveSmallIntegerField(choices=[(s.value, s.name) for s in Settlement])
    total = models.DecimalField(**MONEY)
    cash = models.DecimalField(**MONEY, default=Decimal("0.00"))  # 1031
    electronic = models.DecimalField(**MONEY, default=Decimal("0.00"))  # 1081
    prepayment = models.DecimalField(**MONEY, default=Decimal("0.00"))  # 1215
    credit = models.DecimalField(**MONEY, default=Decimal("0.00"))  # 1216
    taxation = models.CharField(max_length=20)
    electronically = models.BooleanField(default=False)
    buyer_contact = models.CharField(max_length=64, blank=True)  # 1008
    buyer_name = models.CharField(max_length=255, blank=True)
    buyer_inn = models.CharField(max_length=12, blank=True)
    cashier = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    driver_state = models.JSONField(default=dict, blank=True)
    fn_number = models.CharField(max_length=20, blank=True)
    fd_number = models.PositiveBigIntegerField(null=True, blank=True)
    fiscal_sign = models.CharField(max_length=20, blank=True)
    shift_number = models.PositiveIntegerField(null=True, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    ofd_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            # B6: one receipt per ledger entry, and one hand-over receipt per order, whatever retries do.
            models.UniqueConstraint(fields=["entry"], condition=Q(entry__isnull=False), name="one_receipt_per_payment"),
            models.UniqueConstraint(
                fields=["order"], condition=Q(purpose__in=[Purpose.FINAL, Purpose.CREDIT, Purpose.SALE]),
                name="one_final_receipt_per_order",
            ),
        ]
        indexes = [
            models.Index(fields=["register", "state", "id"], name="receipt_queue_idx"),
            models.Index(fields=["state", "next_attempt_at"], name="receipt_due_idx"),  # the relay's look
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.total} ({self.state})"

    @property
    def qr_string(self) -> str:
        """The fiscal QR code's text (fiscal.md §3); empty until registered."""
        if self.state != self.State.REGISTERED:
            return ""
        moment = timezone.localtime(self.registered_at).strftime("%Y%m%dT%H%M")
        return f"t={moment}&s={self.total:.2f}&fn={self.fn_number}&i={self.fd_number}&fp={self.fiscal_sign}&n={self.settlement}"


class ReceiptLine(models.Model):
    receipt = models.ForeignKey(Receipt, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=15, decimal_places=3)
    price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    payment_method = models.PositiveSmallIntegerField(choices=[(m.value, m.name) for m in PaymentMethod])  # 1214
    subject = models.PositiveSmallIntegerField(choices=[(s.value, s.name) for s in Subject])  # 1212
    vat = models.PositiveSmallIntegerField(choices=[(v.value, v.name) for v in Vat])  # 1199
    vat_amount = models.DecimalField(**MONEY)  # 1200
    measure = models.PositiveSmallIntegerField(default=Measure.PIECE)  # 2108

    class Meta:
        ordering = ["position"]
