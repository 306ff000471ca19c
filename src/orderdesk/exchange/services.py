"""The 1C exchange's use cases (B10), one transaction each: open a session, hand orders out and
have them confirmed, take 1C's files and apply the documents in them. The HTTP protocol around
them is in views.py; the decisions are in rules.py; the XML is in commerceml.py.

Delivery is two-phase (commerceml.md §0.6): `query` notes which version of each order went out,
and only the `success` that follows makes those versions confirmed. An order changed in between
has a newer version, so it goes out again; a query never confirmed is simply repeated.
"""

import logging
import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from orderdesk.core import rows
from orderdesk.core.actors import Actor
from orderdesk.core.errors import DomainError
from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Permission, Role
from orderdesk.exchange import commerceml, rules
from orderdesk.exchange.commerceml import LineOut, OrderOut, Refused
from orderdesk.exchange.models import ExchangeSession, OrderExchange, Upload, UploadChunk
from orderdesk.orders import events
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order, StatusDefinition
from orderdesk.orders.rules import ItemKind, PaymentStatus, StatusCode
from orderdesk.payments import services as payments

log = logging.getLogger(__name__)

COOKIE_NAME = "orderdesk_1c"
SESSION_LIFETIME = timedelta(hours=12)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # one file 1C sends, all its chunks together
FILE_LIMIT = 16 * 1024 * 1024  # the largest single POST we ask 1C for; bigger files come in chunks
MARK_BATCH = 1000


def _hash(token: str) -> str:
    return ApiKey.hash(token)


def key_for_password(password: str) -> ApiKey | None:
    """1C signs in with a user name of the shop's choosing and an integration API key as password."""
    key = rows.first(ApiKey, ("id", "name", "role"), key_hash=ApiKey.hash(password), null=("revoked_at",))
    return key if key is not None and key.role == Role.INTEGRATION else None


def actor_of(session: ExchangeSession) -> Actor:
    return Actor.for_api_key(session.api_key)


@transaction.atomic
def open_session(key: ApiKey, login: str) -> str:
    """`checkauth`: a new session; its token is what 1C sends back as a cookie."""
    Actor.for_api_key(key).require(Permission.ORDERS_READ_ALL)
    token = secrets.token_urlsafe(32)
    ExchangeSession.objects.create(token_hash=_hash(token), api_key=key, login=login[:100])
    ExchangeSession.objects.filter(last_seen_at__lt=timezone.now() - SESSION_LIFETIME).delete()
    return token


def session_for(token: str) -> ExchangeSession | None:
    """The live session of a cookie; None when unknown, expired or its key was revoked."""
    session = (ExchangeSession.objects.select_related("api_key")
               .filter(token_hash=_hash(token), api_key__revoked_at__isnull=True).first())
    now = timezone.now()
    if session is None or session.last_seen_at < now - SESSION_LIFETIME:
        return None
    if now - session.last_seen_at > timedelta(minutes=1):
        rows.update(ExchangeSession, session.pk, last_seen_at=now)
    return session


@transaction.atomic
def start(session: ExchangeSession, version: str) -> None:
    """`init`: forget this session's earlier uploads and remember the schema version 1C wants;
    with a version 1C speaks the newer protocol (files are stored by `file`, applied by `import`)."""
    Upload.objects.filter(session=session).delete()
    session.version = version.strip() if rules.valid_version(version) else ""
    rows.update(ExchangeSession, session.pk, version=session.version)


def order_state(actor: Actor, order_id: int) -> dict:
    """B10 on the order card: staff see what 1C confirmed and reported (a customer never does)."""
    actor.require(Permission.EXCHANGE_READ)
    order = orders.get_order(actor, order_id)
    state = OrderExchange.objects.filter(order=order).first() or OrderExchange(order=order)
    return {"order_id": order.pk, "version": order.version, "confirmed": state.confirmed_version >= order.version,
            **{name: getattr(state, name) for name in ("confirmed_version", *FACT_FIELDS)}}


# ---- orders to 1C ----


def _shop_time(moment):
    return timezone.localtime(moment, ZoneInfo(settings.TIME_ZONE)).replace(tzinfo=None)


def _order_out(order: Order, status: StatusDefinition, one_c_number: str) -> OrderOut:
    lines = [
        LineOut(line_id=item.sku or f"{order.pk}-{item.position}", sku=item.sku, name=item.name, unit=item.unit,
                quantity=item.quantity, price=item.price, amount=item.amount, vat_rate=item.vat_rate,
                is_service=item.kind == ItemKind.SERVICE)
        for item in order.items.all()
    ]
    if order.delivery_price > 0:
        name = f"Доставка ({order.delivery_method})" if order.delivery_method else "Доставка заказа"
        lines.append(LineOut(line_id=rules.DELIVERY_LINE_ID, sku="", name=name[:255], unit="шт",
                             quantity=Decimal("1"), price=order.delivery_price, amount=order.delivery_price,
                             vat_rate=payments.DELIVERY_VAT_RATE, is_service=True))
    customer = order.customer
    return OrderOut(
        document_id=str(order.pk), number=order.number, created_at=_shop_time(order.created_at),
        currency=order.currency, total=order.total, version=order.version, customer_id=f"od-{customer.pk}",
        customer_name=order.customer_name or customer.name, customer_kind=customer.kind, customer_inn=customer.inn,
        customer_email=order.customer_email, customer_phone=order.customer_phone, comment=order.comment,
        lines=tuple(lines), status_code=status.code, status_name=status.name_ru,
        status_changed_at=_shop_time(order.status_changed_at), is_final=status.is_final,
        paid=order.payment_status in (PaymentStatus.PAID, PaymentStatus.OVERPAID),
        cancelled=order.status_id == StatusCode.CANCELLED, delivery_method=order.delivery_method,
        delivery_address=order.delivery_address, one_c_number=one_c_number,
    )


def orders_due() -> "QuerySet[Order]":  # noqa: F821
    """Orders 1C has not confirmed in their present version, oldest first."""
    return (Order.objects.filter(Q(exchange__isnull=True) | Q(exchange__confirmed_version__lt=F("version")))
            .order_by("pk"))


@dataclass(frozen=True)
class Export:
    file: tempfile.SpooledTemporaryFile
    orders: int


def export(session: ExchangeSession, *, limit: int, charset: str) -> Export:
    """`query`: the orders due, at most `limit`, written to a file that stays in memory while small;
    each one noted as handed out in its version to this session, to be confirmed by `success`."""
    version = rules.schema_version(session.version)
    statuses = {s.code: s for s in StatusDefinition.objects.all()}
    due = (orders_due().select_related("customer", "exchange").prefetch_related("items")[:limit])
    handed_out: list[tuple[int, int]] = []

    def documents():
        for order in due.iterator(chunk_size=500):
            exchange = getattr(order, "exchange", None)
            handed_out.append((order.pk, order.version))
            yield _order_out(order, statuses[order.status_id], exchange.one_c_number if exchange else "")

    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    written = commerceml.write_orders(out, documents(), version=version, charset=charset,
                                      generated_at=_shop_time(timezone.now()))
    _note_handed_out(session, handed_out)
    out.seek(0)
    return Export(out, written)


def _note_handed_out(session: ExchangeSession, handed_out: list[tuple[int, int]]) -> None:
    now = timezone.now()
    for start_at in range(0, len(handed_out), MARK_BATCH):
        with transaction.atomic():
            OrderExchange.objects.bulk_create(
                [OrderExchange(order_id=pk, queried_version=version, queried_session=session, updated_at=now)
                 for pk, version in handed_out[start_at:start_at + MARK_BATCH]],
                update_conflicts=True, unique_fields=["order"],
                update_fields=["queried_version", "queried_session", "updated_at"],
            )


@transaction.atomic
def confirm(session: ExchangeSession) -> int:
    """`success`: 1C stored what this session's query gave it; those versions are confirmed."""
    return (OrderExchange.objects.filter(queried_session=session, queried_version__gt=F("confirmed_version"))
            .update(confirmed_version=F("queried_version"), updated_at=timezone.now()))


# ---- 1C's files ----


def _starts_a_file(body: bytes) -> bool:
    """A chunk that opens with an XML declaration or a ZIP header is a new upload of that name, not
    the next piece of the old one (1C re-sends a file under the same name)."""
    head = body[:8].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<?xml") or head.startswith(commerceml.ZIP_MAGIC)


@transaction.atomic
def receive(session: ExchangeSession, raw_name: str, body: bytes) -> Upload:
    """`file`: keep a chunk of a file 1C posts, appended to the earlier chunks of its name."""
    name = rules.clean_filename(raw_name)
    if name is None:
        raise Refused(gettext("«%(name)s» is not a file name.") % {"name": raw_name[:100]})
    if not body:
        raise Refused(gettext("The file to import is empty."))
    upload = Upload.objects.select_for_update().filter(session=session, filename=name).first()
    if upload is not None and (_starts_a_file(body) or upload.imported_at is not None):
        upload.delete()
        upload = None
    if upload is None:
        upload = Upload.objects.create(session=session, filename=name)
    if upload.size + len(body) > MAX_UPLOAD_BYTES:
        raise Refused(gettext("The file is larger than %(size)s MB.") % {"size": MAX_UPLOAD_BYTES // (1024 * 1024)})
    position = UploadChunk.objects.filter(upload=upload).count()
    UploadChunk.objects.create(upload=upload, position=position, data=body)
    upload.size += len(body)
    rows.update(Upload, upload.pk, size=upload.size)
    return upload


def _upload_to_import(session: ExchangeSession, name: str) -> Upload | None:
    """The upload `import` names, or else the last archive 1C posted: 1C names the XML inside it."""
    uploads = Upload.objects.filter(session=session)
    return uploads.filter(filename=name).first() or uploads.order_by("-pk").first()


def import_file(session: ExchangeSession, raw_name: str) -> list[str]:
    """`import` (or `file` in the old protocol): apply every order document of the file, each in a
    transaction of its own; what could not be applied is reported line by line. The same file
    imported again changes nothing."""
    name = rules.clean_filename(raw_name)
    if name is None:
        raise Refused(gettext("«%(name)s» is not a file name.") % {"name": raw_name[:100]})
    upload = _upload_to_import(session, name)
    if upload is None:
        raise Refused(gettext("The file «%(name)s» was not uploaded.") % {"name": name})
    if upload.imported_at is not None:
        return upload.report.splitlines()
    data = b"".join(bytes(chunk.data) for chunk in upload.chunks.order_by("position"))
    if data.startswith(commerceml.ZIP_MAGIC):
        _, data = commerceml.unzip(data, wanted=name)
    documents = list(commerceml.read_documents(data))  # all read before any is applied: a bad file changes nothing
    actor = actor_of(session)
    report = [line for document in documents if (line := apply_document(actor, document))]
    rows.update(Upload, upload.pk, imported_at=timezone.now(), report="\n".join(report))
    log.info("1C import of %s: %d documents, %d remarks", name, len(documents), len(report))
    return report


_NOTES = {
    "total_differs": _("the total in 1C differs from the order's; the order was not changed"),
    "paid_in_1c_only": _("1C reports a payment that orderdesk has not received; kept as 1C's fact"),
}


def _note_text(note: str) -> str:
    code, *arguments = note.split(":")
    if code == "status_not_allowed":
        target, current = arguments
        return str(_("1C's status «%(target)s» cannot follow «%(current)s»")
                   % {"target": StatusDefinition.name_of(target), "current": StatusDefinition.name_of(current)})
    if code == "status_refused":
        target, reason = arguments
        return str(_("the status «%(target)s» was refused (%(reason)s)")
                   % {"target": StatusDefinition.name_of(target), "reason": reason})
    return str(_NOTES[code])


def _find_order(document: rules.OneCDocument) -> int | None:
    found = rows.first(Order, ("id",), number=document.number.strip()) if document.number.strip() else None
    if found is None and document.one_c_id:
        known = OrderExchange.objects.filter(one_c_id=document.one_c_id).values_list("order_id", flat=True).first()
        return known
    return found.pk if found else None


FACT_FIELDS = ("one_c_id", "one_c_number", "one_c_date", "posted", "one_c_status", "paid_at", "payment_number",
               "shipped_at", "shipment_number")


def _facts_of(document: rules.OneCDocument) -> dict:
    return {"one_c_id": document.one_c_id, "one_c_number": document.one_c_number, "one_c_date": document.one_c_date,
            "posted": bool(document.posted), "one_c_status": document.status_text, "paid_at": document.paid_at,
            "payment_number": document.payment_number, "shipped_at": document.shipped_at,
            "shipment_number": document.shipment_number}


def _aware(moment):
    return timezone.make_aware(moment, ZoneInfo(settings.TIME_ZONE)) if moment is not None else None


def apply_document(actor: Actor, document: rules.OneCDocument) -> str | None:
    """One document of 1C's: its facts stored on the order, the moves they imply made through the
    order services (so the history, the customer and the rules see them as any other change), and,
    if 1C held the order as it was, its new version counted as known to 1C, so 1C's own change
    does not bounce back to it.
    Returns a line for 1C's log when something could not be followed."""
    if document.operation and document.operation != rules.ORDER_OPERATION:
        return None  # 2.10's payment and shipment documents: their facts also come on the order
    order_id = _find_order(document)
    if order_id is None:
        return str(_("Order №%(number)s was not found on the site.") % {"number": document.number})
    with transaction.atomic():
        # The order's row alone is locked first. On PostgreSQL a locking read with joins (as
        # locked_order's) that waited for another import of this document re-checks the join with
        # the status it read before the wait, and finds no order once that import changed it.
        list(Order.objects.select_for_update(no_key=True).filter(pk=order_id).values_list("pk"))
        order = orders.locked_order(order_id)
        state, _created = OrderExchange.objects.select_for_update().get_or_create(order=order)
        if state.applied_digest == document.digest:
            return None
        known_to_1c = state.confirmed_version >= order.version
        plan = rules.plan(rules.OrderNow(order.status_id, order.deletion_mark, order.total, order.payment_status),
                          document)
        notes = list(plan.notes)
        for status in plan.statuses:
            try:
                payments.change_status(actor, order.pk, status)
            except DomainError as exc:
                notes.append(f"status_refused:{status}:{exc.code}")
                break
        if plan.deletion_mark is not None:
            orders.set_removal_mark(actor, order.pk, plan.deletion_mark)
        facts = {name: (_aware(value) if name in ("one_c_date", "paid_at", "shipped_at") else value)
                 for name, value in _facts_of(document).items()}
        before = {name: getattr(state, name) for name in FACT_FIELDS}
        order = orders.locked_order(order.pk)
        changes = {name: [_plain(before[name]), _plain(facts[name])] for name in FACT_FIELDS
                   if before[name] != facts[name]}
        if changes or notes:
            events.record(order, "order.1c.updated", actor, {**changes, "notes": notes})
        for name, value in facts.items():
            setattr(state, name, value)
        state.applied_digest = document.digest
        if known_to_1c:  # 1C's own change is not news to 1C; a change of ours it has not had still is
            state.confirmed_version = order.version
        state.updated_at = timezone.now()
        state.save()
    if not notes:
        return None
    return str(_("Order №%(number)s: %(notes)s") % {"number": order.number, "notes": "; ".join(map(_note_text, notes))})


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value
