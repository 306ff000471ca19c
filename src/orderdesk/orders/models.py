from collections.abc import Callable
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from orderdesk.core import rows
from orderdesk.orders.rules import ItemKind, OrderSource, PaymentStatus, VAT_RATE_CHOICES

MONEY = {"max_digits": 14, "decimal_places": 2}


class Counterparty(models.Model):
    """The buyer (контрагент): a private person, a company or a sole trader."""

    class Kind(models.TextChoices):
        PERSON = "person", _("private person")
        COMPANY = "company", _("company")
        SOLE_TRADER = "sole_trader", _("sole trader")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(_("name"), max_length=255)
    email = models.EmailField(_("e-mail"), blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    inn = models.CharField(_("INN"), max_length=12, blank=True)
    language = models.CharField(_("language"), max_length=2, default="ru")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("customer account"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="counterparties",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("counterparty")
        verbose_name_plural = _("counterparties")

    def __str__(self) -> str:
        return self.name


class StatusDefinition(models.Model):
    """An order status as the shop names it; which moves between them are allowed is in rules.py."""

    code = models.CharField(_("code"), max_length=30, primary_key=True)
    name_ru = models.CharField(_("name (Russian)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_final = models.BooleanField(_("final"), default=False)
    hands_over_goods = models.BooleanField(_("hands goods over"), default=False)

    class Meta:
        ordering = ["position"]
        verbose_name = _("order status")
        verbose_name_plural = _("order statuses")

    def __str__(self) -> str:
        return self.name()

    def name(self, language: str | None = None) -> str:
        return self.name_en if (language or get_language() or "ru").startswith("en") else self.name_ru

    @classmethod
    def named(cls, code: str) -> "StatusDefinition | None":
        """The status with only its code, names and whether it hands over the goods read (a lean look-up)."""
        return _STATUS_NAMED.first(code=code)

    @classmethod
    def name_of(cls, code: str) -> str:
        """A status's name in the active language; the code itself for one no longer defined."""
        return cls.name_lookup()(code)

    @classmethod
    def name_lookup(cls) -> Callable[[str], str]:
        """`name_of` for a batch (a list, a run of e-mails): each status read once, named in the
        language active at each call."""
        definition = cache(cls.named)
        return lambda code: d.name() if (d := definition(code)) else code


_STATUS_NAMED = rows.Prepared(lambda code: StatusDefinition.objects.filter(code=code)
                              .only("code", "name_ru", "name_en", "hands_over_goods"), code=str)


class ShopSettings(models.Model):
    """One row of shop-wide settings, edited by an administrator."""

    default_site_status = models.ForeignKey(
        StatusDefinition, verbose_name=_("default request status"), on_delete=models.PROTECT, default="pending_approval"
    )
    prepayment_style = models.CharField(
        _("prepayment receipts"), max_length=10, default="advance",
        choices=[("advance", _("«Аванс», one line «Оплата заказа №N»")),
                 ("itemized", _("«Предоплата» with the items"))],
    )
    auto_close_enabled = models.BooleanField(_("close orders automatically"), default=False)
    auto_close_after_days = models.PositiveSmallIntegerField(_("close after days in «Issued»"), default=3)

    class Meta:
        verbose_name = _("shop settings")

    @classmethod
    def current(cls) -> "ShopSettings":
        return _SHOP_SETTINGS.first(pk=1) or cls.objects.select_related("default_site_status").get_or_create(pk=1)[0]


_SHOP_SETTINGS = rows.Prepared(lambda pk: ShopSettings.objects.select_related("default_site_status").filter(pk=pk),
                               pk=int)


def one_c_lacks(version, order_path: str = "") -> Q:
    """Orders whose `version` (an F() of a column) 1C has not confirmed; `order_path` leads from
    another model to the order (`"order__"`)."""
    confirmed = f"{order_path}one_c_confirmed_version"
    return Q(**{f"{confirmed}__isnull": True}) | Q(**{f"{confirmed}__lt": version})


# Orders 1C does not hold as they are now. Queries must spell the index's condition exactly so,
# or SQLite does not see that its partial index covers them.
NOT_CONFIRMED_BY_1C = one_c_lacks(F("version"))


class Order(models.Model):
    number = models.CharField(_("number"), max_length=20, unique=True)
    source = models.CharField(_("source"), max_length=10, choices=[(s.value, s.label) for s in OrderSource])
    external_id = models.CharField(_("external id"), max_length=100, null=True, blank=True)
    intake_fingerprint = models.CharField(max_length=64, blank=True)
    customer = models.ForeignKey(Counterparty, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="orders")
    # A snapshot of the buyer as the order was placed, also what the list searches.
    customer_name = models.CharField(_("customer name"), max_length=255)
    customer_email = models.CharField(_("customer e-mail"), max_length=254, blank=True)
    customer_phone = models.CharField(_("customer phone"), max_length=20, blank=True)
    # Number, name, e-mail and phone folded to lower case: one column the text search reads the
    # same way on every database (SQLite's own case folding knows only Latin letters). Indexed by
    # trigrams (migration 0004); on SQLite the index is an FTS5 table kept by triggers, which a
    # migration that rebuilds this table drops and must create again.
    search_text = models.CharField(max_length=600, blank=True)
    # No index of its own on a relation that leads a composite index (the list's, the feed's…):
    # that one serves its look-ups, and each index more is written with every row.
    status = models.ForeignKey(StatusDefinition, verbose_name=_("status"), on_delete=models.PROTECT, related_name="+",
                               db_index=False)
    status_changed_at = models.DateTimeField(_("status changed"), default=timezone.now)
    handed_over_at = models.DateTimeField(_("handed over"), null=True, blank=True)  # first entered a status that hands goods over
    payment_status = models.CharField(
        _("payment status"), max_length=20, choices=[(s.value, s.label) for s in PaymentStatus], default=PaymentStatus.NOT_PAID
    )
    currency = models.CharField(max_length=3, default="RUB")
    items_total = models.DecimalField(_("items total"), **MONEY, default=Decimal("0.00"))
    delivery_price = models.DecimalField(_("delivery price"), **MONEY, default=Decimal("0.00"))
    total = models.DecimalField(_("total"), **MONEY, default=Decimal("0.00"))
    paid_amount = models.DecimalField(_("paid"), **MONEY, default=Decimal("0.00"))
    delivery_method = models.CharField(_("delivery method"), max_length=100, blank=True)
    delivery_address = models.CharField(_("delivery address"), max_length=500, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    deletion_mark = models.BooleanField(_("marked for removal"), default=False)
    is_quick = models.BooleanField(_("quick order"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    version = models.PositiveIntegerField(default=1)
    # The version 1C confirmed it holds (the CommerceML exchange's `success`); NULL: none yet. Kept
    # beside `version` so the orders 1C lacks are found by an index, not by reading every order.
    # Nullable with no default: adding it altered the table in place, which keeps its triggers.
    one_c_confirmed_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], condition=Q(external_id__isnull=False), name="order_unique_external_id"
            )
        ]
        indexes = [
            # The list pages newest first on (created_at, id); each filter has an index in that order.
            # The deletion mark is left out: Django writes "not marked" as NOT deletion_mark, which no
            # index can seek on; it is a cheap check of the rows walked, as nearly all are unmarked.
            models.Index(fields=["status", "created_at", "id"], name="order_list_status_idx"),
            models.Index(fields=["payment_status", "created_at", "id"], name="order_list_payment_idx"),
            models.Index(fields=["created_at", "id"], name="order_list_created_idx"),
            models.Index(fields=["created_at", "id"], condition=Q(deletion_mark=True), name="order_list_marked_idx"),
            models.Index(fields=["id"], condition=NOT_CONFIRMED_BY_1C, name="order_due_to_1c_idx"),
        ]

    def __str__(self) -> str:
        return f"№{self.number}"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", db_index=False)
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    name = models.CharField(_("name"), max_length=255)
    unit = models.CharField(_("unit"), max_length=20, default="шт")
    quantity = models.DecimalField(_("quantity"), max_digits=15, decimal_places=3)
    price = models.DecimalField(_("price"), **MONEY)
    discount = models.DecimalField(_("discount"), **MONEY, default=Decimal("0.00"))
    amount = models.DecimalField(_("amount"), **MONEY)
    vat_rate = models.CharField(_("VAT rate"), max_length=6, choices=VAT_RATE_CHOICES)
    kind = models.CharField(_("kind"), max_length=10, choices=[(k.value, k.label) for k in ItemKind], default=ItemKind.GOODS)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["order", "position"], name="order_item_unique_position")]


class OrderEvent(models.Model):
    """The append-only log every change writes, in the change's own transaction (B7).

    History, customer notifications and, later, receipts, webhooks and the 1C queue read it.
    The order link has no database constraint so the history of a purged order survives.
    """

    order = models.ForeignKey(Order, on_delete=models.DO_NOTHING, db_constraint=False, related_name="events",
                              db_index=False)
    order_number = models.CharField(max_length=20)
    code = models.CharField(max_length=60)
    actor_label = models.CharField(max_length=200)
    actor_role = models.CharField(max_length=20)
    user = models.ForeignKey(  # who did it, for reading the log; nothing looks events up by it
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+",
        db_index=False,
    )
    api_key_id = models.BigIntegerField(null=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["order", "id"], name="order_event_order_idx")]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("order events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("order events are append-only")


class NotificationRead(models.Model):
    """The customer has read the notification of this event (S4). A customer's notifications are
    the customer-visible events of his orders themselves: a change writes no row for them, and
    only reading one does."""

    event = models.OneToOneField(OrderEvent, on_delete=models.CASCADE, primary_key=True, related_name="read_mark")
    read_at = models.DateTimeField(default=timezone.now)
