"""The only code that changes orders. One transaction per use case: lock, check the rule, write
the change and its event (with what the event owes: notification, e-mail) — all or nothing."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.core.actors import Actor
from orderdesk.core.errors import Conflict, InvalidInput, NotFound
from orderdesk.core import counters, rows
from orderdesk.core.models import User
from orderdesk.core.rights import Permission, Role
from orderdesk.orders import events, rules
from orderdesk.orders.models import (
    Counterparty, NotificationRead, Order, OrderEvent, OrderItem, ShopSettings, StatusDefinition,
)
from orderdesk.orders.schemas import CustomerIn, DeliveryIn, ItemIn, OrderIn, OrderListFilters

ORDER_NUMBER_COUNTER = "order_number"
SOURCE_BY_ROLE = {Role.SITE: rules.OrderSource.SITE, Role.INTEGRATION: rules.OrderSource.ONE_C}


@dataclass(frozen=True)
class Placed:
    order: Order
    created: bool
    items: list[OrderItem] | None = None  # as written, when created: the caller needs no re-read


def next_order_number() -> str:
    return f"{counters.next_value(ORDER_NUMBER_COUNTER):06d}"


CUSTOMER_FIELDS = ("id", "kind", "name", "email", "phone", "inn")  # what the order card shows
_COUNTERPARTY_BY = {
    field: rows.Prepared(lambda value, field=field: Counterparty.objects.filter(**{field: value})
                         .only(*CUSTOMER_FIELDS).order_by("id")[:1], value=str)
    for field in ("email", "phone")
}
_CUSTOMER_ACCOUNT = rows.Prepared(lambda email: User.objects.filter(email=email, role=Role.CUSTOMER.value)
                                  .values_list("id").order_by("id")[:1], email=str)


def _find_or_create_counterparty(data: CustomerIn) -> Counterparty:
    field = "email" if data.email else "phone"
    counterparty = _COUNTERPARTY_BY[field].first(value=getattr(data, field))
    if counterparty is None:
        account = _CUSTOMER_ACCOUNT.scalar(email=data.email) if data.email else None
        counterparty = rows.insert(
            Counterparty, kind=data.kind, name=data.name, email=data.email or "", phone=data.phone or "",
            inn=data.inn or "", language=data.language, user_id=account,
        )
    return counterparty


def _item_rows(order: Order, items: list[ItemIn]) -> list[OrderItem]:
    return [
        rows.new(
            OrderItem, order=order, position=position, sku=item.sku, name=item.name, unit=item.unit,
            quantity=item.quantity, price=item.price, discount=item.discount, vat_rate=item.vat_rate, kind=item.kind,
            amount=rules.line_amount(rules.Line(item.quantity, item.price, item.discount)),
        )
        for position, item in enumerate(items, start=1)
    ]


def _totals(items: list[ItemIn], delivery_price: Decimal) -> rules.Totals:
    return rules.order_totals((rules.Line(i.quantity, i.price, i.discount) for i in items), delivery_price)


def place_order(actor: Actor, data: OrderIn) -> Placed:
    """S1, S5, S6: an order from the site (idempotent on its external id) or made by a manager."""
    actor.require(Permission.ORDERS_INTAKE)
    source = SOURCE_BY_ROLE.get(actor.role, rules.OrderSource.MANAGER)
    if source != rules.OrderSource.MANAGER and not data.external_id:
        raise InvalidInput({"external_id": [str(_("The sender's order id is required."))]})
    fingerprint = rules.intake_fingerprint(data.model_dump(mode="json"))
    status = _intake_status(source)
    try:
        with transaction.atomic():
            return _create_order(actor, data, source, fingerprint, status)
    except IntegrityError:
        # A repeat (or a concurrent twin that won the race) meets the unique (source, external_id):
        # answered as the repeat it is. Looking first would cost every new order a query.
        existing = _existing_intake(source, data.external_id, fingerprint) if data.external_id else None
        if existing is None:
            raise
        return Placed(existing, created=False)


_INTAKE = rows.Prepared(lambda source, external_id: Order.objects.filter(source=source, external_id=external_id)
                       .only("id", "number", "intake_fingerprint").order_by("id")[:1], source=str, external_id=str)


def _existing_intake(source: str, external_id: str, fingerprint: str) -> Order | None:
    found = _INTAKE.first(source=source, external_id=external_id)
    if found is None:
        return None
    if found.intake_fingerprint != fingerprint:
        raise Conflict(
            _("An order with this external id was already received with different contents."),
            code="external_id_conflict", order_id=found.pk, number=found.number,
        )
    return Order.objects.select_related("status", "customer").get(pk=found.pk)


def _intake_status(source: str) -> StatusDefinition:
    """S6: a site order starts in the status the shop chose (read with the settings, one query); any
    other in «pending approval»."""
    if source == rules.OrderSource.SITE:
        return ShopSettings.current().default_site_status
    return StatusDefinition.named(rules.StatusCode.PENDING_APPROVAL)


def _create_order(actor: Actor, data: OrderIn, source: str, fingerprint: str, status: StatusDefinition) -> Placed:
    customer = _find_or_create_counterparty(data.customer)
    totals = _totals(data.items, data.delivery.price)
    now = timezone.now()
    number = next_order_number()
    order = rows.insert(
        Order, number=number, source=source, external_id=data.external_id, intake_fingerprint=fingerprint,
        customer=customer, customer_name=data.customer.name, customer_email=data.customer.email or "",
        customer_phone=data.customer.phone or "",
        search_text=rules.search_text(number, data.customer.name, data.customer.email or "", data.customer.phone or ""),
        status=status, items_total=totals.items_total, status_changed_at=now,
        delivery_price=totals.delivery_price, total=totals.total, delivery_method=data.delivery.method,
        delivery_address=data.delivery.address, comment=data.comment, created_at=now, updated_at=now,
    )
    items = rows.insert_many(_item_rows(order, data.items))
    events.record(order, "order.created", actor, {
        "source": source, "status": status.code, "total": str(totals.total), "items": len(data.items),
    })
    return Placed(order, created=True, items=items)


RETAIL_BUYER_NAME = "Розничный покупатель"


def _retail_buyer() -> Counterparty:
    """The counterparty of cash-desk sales to a buyer who gave no name."""
    buyer = Counterparty.objects.filter(name=RETAIL_BUYER_NAME, email="", phone="").order_by("id").first()
    return buyer or Counterparty.objects.create(name=RETAIL_BUYER_NAME)


def create_quick_order(actor: Actor, items: list[ItemIn], customer: CustomerIn | None = None) -> Order:
    """R1: the order a cash-desk sale with no order makes for itself — closed, the goods handed over.
    Runs in the caller's transaction; the caller records the payment."""
    counterparty = _find_or_create_counterparty(customer) if customer else _retail_buyer()
    totals = _totals(items, Decimal("0"))
    number = next_order_number()
    now = timezone.now()
    name = customer.name if customer else counterparty.name
    email, phone = (customer.email or "", customer.phone or "") if customer else ("", "")
    order = Order.objects.create(
        number=number, source=rules.OrderSource.CASH_DESK, customer=counterparty, customer_name=name,
        customer_email=email, customer_phone=phone, search_text=rules.search_text(number, name, email, phone),
        status_id=rules.StatusCode.CLOSED, is_quick=True, items_total=totals.items_total, total=totals.total,
        created_at=now, updated_at=now, status_changed_at=now, handed_over_at=now,
    )
    OrderItem.objects.bulk_create(_item_rows(order, items))
    events.record(order, "order.created", actor, {
        "source": rules.OrderSource.CASH_DESK, "status": rules.StatusCode.CLOSED, "total": str(totals.total),
        "items": len(items), "quick": True,
    })
    return order


_ORDER_LOCK = rows.Prepared(lambda order_id: Order.objects.select_for_update(no_key=True).filter(pk=order_id)
                            .values_list("pk"), order_id=int)
_ORDER_WITH_PARTIES = rows.Prepared(lambda order_id: Order.objects.select_related("customer", "status")
                                    .filter(pk=order_id), order_id=int)
_ITEMS_OF = rows.Prepared(lambda order_id: OrderItem.objects.filter(order_id=order_id), order_id=int)


def items_of(order: Order) -> list[OrderItem]:
    return rows.related(order, "items", _ITEMS_OF, order_id=order.pk)


def locked_order(order_id: int, *, lock: bool = True) -> Order:
    """The order with its customer and status, locked until the caller's transaction ends
    (`lock=False`: only read). FOR NO KEY UPDATE, not FOR UPDATE: rows that others insert pointing
    at the order (events, notifications) check that key with KEY SHARE, which FOR UPDATE would
    make wait; on PostgreSQL the worker's receipt bookkeeping deadlocked with a payment that way."""
    if lock:
        # The row alone is locked first, then read with its customer and status. A locking read
        # with joins that waits for another transaction re-checks the join on PostgreSQL with the
        # status row it saw before the wait, and finds no order once that transaction moved it.
        _ORDER_LOCK.lock(order_id=order_id)
    order = _ORDER_WITH_PARTIES.first(order_id=order_id)
    if order is None:
        raise NotFound(_("No such order."), code="order_not_found")
    return order


def touch(order: Order, fields: list[str]) -> None:
    """Write the changed `fields` of the order, a new version and the time of the change."""
    order.version += 1
    order.updated_at = timezone.now()
    changed = [Order._meta.get_field(name) for name in (*fields, "version", "updated_at")]
    rows.update(Order, order.pk, **{field.name: getattr(order, field.attname) for field in changed})


@transaction.atomic
def set_status(actor: Actor, order_id: int, status_code: str) -> Order:
    """S5, S9: move an order along its lifecycle; a move the rules forbid is a conflict."""
    actor.require(Permission.ORDERS_SET_STATUS)
    return move_locked(actor, locked_order(order_id), status_code)


def move_locked(actor: Actor, order: Order, status_code: str) -> Order:
    """set_status for an order the caller has locked in its transaction (and checked the right to)."""
    target = StatusDefinition.named(status_code)
    if target is None:
        raise InvalidInput({"status": [str(_("Unknown status."))]})
    current = order.status_id
    if current == status_code:
        return order
    _require_editable_quick(actor, order)
    require_transition(order, status_code)
    order.status = target  # the answer names the new status without reading it again
    order.status_changed_at = timezone.now()
    fields = ["status", "status_changed_at"]
    if order.handed_over_at is None and target.hands_over_goods:
        order.handed_over_at = order.status_changed_at
        fields.append("handed_over_at")
    touch(order, fields)
    events.record(order, "order.status.changed", actor, {"status": [current, status_code]})
    return order


def require_transition(order: Order, target: str) -> None:
    if not rules.transition_allowed(order.status_id, target):
        raise Conflict(
            _("An order in status «%(current)s» cannot be moved to «%(target)s».")
            % {"current": StatusDefinition.name_of(order.status_id), "target": StatusDefinition.name_of(target)},
            code="status_transition_forbidden", current=order.status_id, target=target,
            allowed=rules.allowed_targets(order.status_id),
        )


def _require_editable_quick(actor: Actor, order: Order) -> None:
    if order.is_quick:
        actor.require(Permission.ORDERS_EDIT_QUICK)


@transaction.atomic
def replace_items(actor: Actor, order_id: int, items: list[ItemIn], expected_version: int | None = None) -> Order:
    """Edit the items; totals are recalculated and the customer is told old and new (S4)."""
    actor.require(Permission.ORDERS_EDIT)
    order = locked_order(order_id)
    _require_editable_quick(actor, order)
    if expected_version is not None and expected_version != order.version:
        raise Conflict(
            _("The order was changed by someone else; reload it and try again."),
            code="version_mismatch", version=order.version,
        )
    _require_contents_editable(order)
    before = [_item_snapshot(i) for i in order.items.all()]
    old_total = order.total
    totals = _totals(items, order.delivery_price)
    _require_total_fits(totals.total, "items")
    order.items.all().delete()
    OrderItem.objects.bulk_create(_item_rows(order, items))
    after = [_item_snapshot(i) for i in order.items.all()]
    if before == after:
        return order
    order.items_total, order.total = totals.items_total, totals.total
    touch(order, ["items_total", "total"])
    events.record(order, "order.items.changed", actor, {
        "items": [before, after], "total": [str(old_total), str(totals.total)],
    })
    return order


def _require_total_fits(total: Decimal, field: str) -> None:
    if not rules.sum_fits(total):
        raise InvalidInput({field: [str(_("The order total would be larger than %(max)s.") % {"max": rules.MAX_SUM})]})


def _require_contents_editable(order: Order) -> None:
    if not rules.items_editable(order.status_id):
        raise Conflict(
            _("The contents of an order in status «%(status)s» cannot be changed.") % {"status": StatusDefinition.name_of(order.status_id)},
            code="items_frozen", status=order.status_id,
        )


@transaction.atomic
def update_delivery(actor: Actor, order_id: int, delivery: DeliveryIn) -> Order:
    """The delivery method, address and price; the total follows the price (S4 tells the customer)."""
    actor.require(Permission.ORDERS_EDIT)
    order = locked_order(order_id)
    _require_editable_quick(actor, order)
    _require_contents_editable(order)
    before = {"method": order.delivery_method, "address": order.delivery_address, "price": str(order.delivery_price),
              "total": str(order.total)}
    order.delivery_method, order.delivery_address = delivery.method, delivery.address
    order.delivery_price = delivery.price.quantize(rules.KOPECK)
    order.total = order.items_total + order.delivery_price
    _require_total_fits(order.total, "price")
    after = {"method": order.delivery_method, "address": order.delivery_address, "price": str(order.delivery_price),
             "total": str(order.total)}
    if before == after:
        return order
    touch(order, ["delivery_method", "delivery_address", "delivery_price", "total"])
    events.record(order, "order.delivery.changed", actor, rules.changes(before, after))
    return order


def _item_snapshot(item: OrderItem) -> dict:
    return {
        "sku": item.sku, "name": item.name, "unit": item.unit, "quantity": str(item.quantity),
        "price": str(item.price), "discount": str(item.discount), "amount": str(item.amount),
        "vat_rate": item.vat_rate, "kind": item.kind,
    }


@transaction.atomic
def set_removal_mark(actor: Actor, order_id: int, marked: bool) -> Order:
    """S10: the mark hides the order from the working list; it can be cleared."""
    actor.require(Permission.ORDERS_EDIT)
    order = locked_order(order_id)
    _require_editable_quick(actor, order)
    if order.deletion_mark == marked:
        return order
    order.deletion_mark = marked
    touch(order, ["deletion_mark"])
    events.record(order, "order.removal_mark.set" if marked else "order.removal_mark.cleared", actor,
                  {"deletion_mark": [not marked, marked]})
    return order


@dataclass(frozen=True)
class Purge:
    purged: list[str]
    kept: list[str]  # marked, but with fiscal receipts or payment documents: never destroyed


@transaction.atomic
def purge_marked(actor: Actor, order_ids: list[int] | None = None) -> Purge:
    """S10: an administrator destroys orders marked for removal — never one with receipts or
    payment documents (they protect the order in the database). The purge is itself logged."""
    actor.require(Permission.ORDERS_PURGE)
    marked = Order.objects.select_for_update().filter(deletion_mark=True).order_by("pk")  # as others lock orders
    if order_ids is not None:
        unmarked = set(order_ids) - set(marked.filter(pk__in=order_ids).values_list("pk", flat=True))
        if unmarked:
            raise Conflict(
                _("Only orders marked for removal can be purged."), code="not_marked_for_removal",
                order_ids=sorted(unmarked),
            )
        marked = marked.filter(pk__in=order_ids)
    purged, kept = [], []
    for order in marked:
        try:
            with transaction.atomic():
                events.record(order, "order.purged", actor, {"number": order.number, "total": str(order.total)})
                order.delete()
            purged.append(order.number)
        except ProtectedError:
            kept.append(order.number)
    if kept and order_ids is not None:
        raise Conflict(
            _("Orders with fiscal receipts or payment documents are never purged: %(numbers)s.")
            % {"numbers": ", ".join(kept)}, code="order_has_documents", numbers=kept,
        )
    return Purge(purged, kept)


@transaction.atomic
def update_settings(actor: Actor, **changes) -> ShopSettings:
    """S6: the status new site orders start in (orders already placed keep theirs); B2a: the style
    of prepayment receipts; R10: auto-close."""
    actor.require(Permission.SETTINGS_CHANGE)
    status = changes.pop("default_site_status", None)
    if status is not None and not StatusDefinition.objects.filter(pk=status, is_final=False).exists():
        raise InvalidInput({"default_site_status": [str(_("Unknown status, or a final one."))]})
    shop = ShopSettings.objects.select_for_update().get_or_create(pk=1)[0]
    if status is not None:
        shop.default_site_status_id = status
    for name, value in changes.items():
        setattr(shop, name, value)
    shop.save()
    return shop


# ---- reading ----


def sees_every_order(actor: Actor) -> bool:
    return actor.can(Permission.ORDERS_READ_ALL)


def visible_orders(actor: Actor) -> QuerySet[Order]:
    """B9: staff and machines see every order; a customer only those of his counterparties."""
    if sees_every_order(actor):
        return Order.objects.all()
    if actor.can(Permission.ORDERS_READ_OWN) and actor.user_id:
        return Order.objects.filter(customer__user_id=actor.user_id)
    return Order.objects.none()


def get_order(actor: Actor, order_id: int) -> Order:
    if sees_every_order(actor):
        order = _ORDER_WITH_PARTIES.first(order_id=order_id)
    else:
        order = visible_orders(actor).select_related("customer", "status").filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("No such order."), code="order_not_found")
    rows.attach(order, "items", _ITEMS_OF.all(order_id=order_id))
    return order


def as_seen_by(actor: Actor, order: Order) -> Order:
    """An order a service just changed and committed, for the actor's answer: as it is in hand
    if the actor reads every order, else read as get_order reads it (and refuses it)."""
    return order if sees_every_order(actor) else get_order(actor, order.pk)


_CURSOR = re.compile(r"^(\d{1,16})_(\d{1,18})$")  # ids stay below SQL BIGINT's limit
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(order: Order) -> str:
    """Where the next page starts: the last order's creation time (whole microseconds since 1970,
    counted without floats so no row is skipped or repeated) and id."""
    return f"{(order.created_at - _EPOCH) // _MICROSECOND}_{order.pk}"


def _after_cursor(cursor: str) -> Q:
    if (match := _CURSOR.match(cursor)) is None:  # 16 digits of µs stay within datetime's range
        raise InvalidInput({"cursor": [str(_("Not a cursor this list gave out."))]})
    created = _EPOCH + int(match[1]) * _MICROSECOND
    # The first condition bounds the index range; the second drops the cursor's own instant's rows up to it.
    return Q(created_at__lte=created) & (Q(created_at__lt=created) | Q(pk__lt=int(match[2])))


def list_orders(actor: Actor, filters: OrderListFilters) -> tuple[list[Order], str | None]:
    """S2: newest first, keyset-paged on (created, id) so a page is as fast at the millionth order as
    at the first, and a status or payment filter with a date range walks one index in order."""
    # Statuses come by a second, tiny query: joined, they tempt SQLite's planner to start from the
    # status table and sort the whole list (0.4 s at a million orders) instead of walking an index.
    orders = visible_orders(actor).filter(deletion_mark=filters.marked).prefetch_related("status")
    if filters.status:
        orders = orders.filter(status_id=filters.status)
    if filters.payment_status:
        orders = orders.filter(payment_status=filters.payment_status)
    if filters.created_from:
        orders = orders.filter(created_at__gte=filters.created_from)
    if filters.created_to:
        orders = orders.filter(created_at__lt=filters.created_to)
    if filters.q:
        orders = orders.filter(_search(filters.q))
    if filters.cursor:
        orders = orders.filter(_after_cursor(filters.cursor))
    page = list(orders.order_by("-created_at", "-pk")[: filters.limit + 1])
    next_cursor = encode_cursor(page[filters.limit - 1]) if len(page) > filters.limit else None
    return page[: filters.limit], next_cursor


def list_my_orders(actor: Actor, filters: OrderListFilters) -> tuple[list[Order], str | None]:
    """The personal account's list: a customer's own orders; staff and machines have the full list."""
    actor.require(Permission.ORDERS_READ_OWN)
    return list_orders(actor, filters)


def _search(text: str) -> Q:
    """The number exactly, or the text in the number, name, e-mail or phone; a phone written any
    way; four or more digits in the phone. Each alternative asks search_text for a string, which
    the trigram index (migration 0004) can find: search_text holds the phone as customer_phone
    has it (rules.search_text), so asking it too changes no result."""
    needle = rules.search_needle(text)
    match, keys = Q(number=text) | Q(search_text__contains=needle), [needle]
    if (phone := rules.normalize_phone(text)) is not None:
        match |= Q(customer_phone=phone, search_text__contains=phone)
        keys.append(phone)
    elif sum(c.isdigit() for c in text) >= 4:
        digits = "".join(c for c in text if c.isdigit())
        match |= Q(customer_phone__contains=digits, search_text__contains=digits)
        keys.append(digits)
    if (indexed := _fts_candidates(keys)) is not None:
        match &= indexed | Q(number=text)
    return match


# A needle in this many orders or more is found sooner by walking the list newest first, where
# a page of matches comes soon, than by collecting and sorting all its orders.
SEARCH_INDEX_MAX_HITS = 2000


def _fts_candidates(keys: list[str]) -> Q | None:
    """SQLite: the orders whose search_text holds one of `keys`, found in the FTS5 trigram table;
    None where the index cannot narrow the search (a key under three characters, a NUL, which ends
    an FTS5 query) or should not (a frequent needle). PostgreSQL's trigram index serves LIKE itself."""
    if connection.vendor != "sqlite" or any(len(key) < 3 or "\x00" in key for key in keys):
        return None
    # Each key a quoted FTS5 string ("" for a quote): user input is never query syntax.
    query = " OR ".join('"' + key.replace('"', '""') + '"' for key in dict.fromkeys(keys))
    with connection.cursor() as cursor:
        cursor.execute("SELECT rowid FROM orders_order_search WHERE orders_order_search MATCH %s LIMIT %s",
                       [query, SEARCH_INDEX_MAX_HITS])
        hits = [row[0] for row in cursor.fetchall()]
    return Q(pk__in=hits) if len(hits) < SEARCH_INDEX_MAX_HITS else None


def order_history(actor: Actor, order_id: int):
    order = get_order(actor, order_id)
    return order.events.order_by("id")


def customer_notifications(actor: Actor, *, unread: bool = False) -> QuerySet[OrderEvent]:
    """The customer's notifications, newest first: the customer-visible events of his orders (S4),
    each with `read_at`, None until he reads it; `unread`: only those."""
    actor.require(Permission.NOTIFICATIONS_OWN)
    notifications = (OrderEvent.objects.filter(order__customer__user_id=actor.user_id, code__in=events.CUSTOMER_VISIBLE)
                     .annotate(read_at=F("read_mark__read_at")).order_by("-id"))
    return notifications.filter(read_at__isnull=True) if unread else notifications


@transaction.atomic
def mark_notifications_read(actor: Actor, ids: list[int] | None) -> int:
    unread = customer_notifications(actor, unread=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    marked = [NotificationRead(event_id=pk) for pk in unread.values_list("pk", flat=True)]
    # two tabs marking the same notification at once: the second mark is no error
    NotificationRead.objects.bulk_create(marked, ignore_conflicts=True)
    return len(marked)


@transaction.atomic
def link_customer_account(user: User) -> int:
    """A customer account sees the orders of every counterparty with its e-mail; makes one if none."""
    linked = Counterparty.objects.filter(email=user.email, user__isnull=True).update(user=user)
    if not linked and not Counterparty.objects.filter(user=user).exists():
        Counterparty.objects.create(name=user.get_full_name() or user.email, email=user.email, user=user,
                                    language=user.language)
        linked = 1
    return linked
