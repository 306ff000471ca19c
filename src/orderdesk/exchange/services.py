"""The 1C exchange's use cases (B10), one transaction each: open a session, hand orders out and
have them confirmed, take 1C's files and apply the documents in them. The HTTP protocol around
them is in views.py; the decisions are in rules.py; the XML is in commerceml.py.

Delivery is two-phase (commerceml.md §0.6): `query` notes which version of each order went out,
and only the `success` that follows makes those versions confirmed. An order changed in between
has a newer version, so it goes out again; a query never confirmed is simply repeated.
"""

import hashlib
import logging
import secrets
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, OuterRef, Q, Subquery
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
from orderdesk.orders.models import NOT_CONFIRMED_BY_1C, Order, StatusDefinition, one_c_lacks
from orderdesk.orders.rules import ItemKind, PaymentStatus, StatusCode
from orderdesk.payments import services as payments

log = logging.getLogger(__name__)

COOKIE_NAME = "orderdesk_1c"
SESSION_LIFETIME = timedelta(hours=12)
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # one file 1C sends, all its chunks together
# The largest single POST we ask 1C for; bigger files come in chunks. Below nginx's default
# client_max_body_size (1 MiB), whose refusal 1C could not read.
FILE_LIMIT = 1_000_000
MAX_CHUNKS = 256  # of one file: more means a sender cutting it into slivers
MAX_UPLOADS = 20  # files of one session
MARK_BATCH = 1000


def key_for_password(password: str) -> ApiKey | None:
    """1C signs in with a user name of the shop's choosing and an integration API key as password."""
    key = ApiKey.live(password)
    return key if key is not None and key.role == Role.INTEGRATION else None


def actor_of(session: ExchangeSession) -> Actor:
    return Actor.for_api_key(session.api_key)


@transaction.atomic
def open_session(key: ApiKey, login: str) -> str:
    """`checkauth`: a new session; its token is what 1C sends back as a cookie."""
    Actor.for_api_key(key).require(Permission.ORDERS_READ_ALL)
    token = secrets.token_urlsafe(32)
    ExchangeSession.objects.create(token_hash=ApiKey.hash(token), api_key=key, login=login[:100])
    ExchangeSession.objects.filter(last_seen_at__lt=timezone.now() - SESSION_LIFETIME).delete()
    return token


def _live(sessions):
    return sessions.select_related("api_key").filter(
        api_key__revoked_at__isnull=True, last_seen_at__gte=timezone.now() - SESSION_LIFETIME)


def _seen(session: ExchangeSession) -> ExchangeSession:
    now = timezone.now()
    if now - session.last_seen_at > timedelta(minutes=1):
        rows.update(ExchangeSession, session.pk, last_seen_at=now)
    return session


def session_for(token: str) -> ExchangeSession | None:
    """The live session of a cookie; None when unknown, expired or its key was revoked."""
    session = _live(ExchangeSession.objects).filter(token_hash=ApiKey.hash(token)).first()
    return _seen(session) if session else None


def session_of_key(key: ApiKey, login: str) -> ExchangeSession:
    """For a 1C that sends its Basic credentials on every call instead of the cookie: the key's
    latest live session, so its `success` confirms what its `query` gave, and `import` finds its files."""
    session = _live(ExchangeSession.objects).filter(api_key=key).order_by("-pk").first()
    return _seen(session) if session else session_for(open_session(key, login))


def start(session: ExchangeSession, version: str) -> None:
    """`init`: remember the schema version 1C wants (with one, 1C speaks the newer protocol: `file`
    stores, `import` applies) and clear the session's files. A whole file 1C sent but never had
    imported is applied first rather than lost."""
    for upload in Upload.objects.filter(session=session, imported_at__isnull=True):
        try:
            _import_upload(session, upload, upload.filename)
        except Refused as exc:
            log.warning("1C exchange: %s, left unimported by session %s, is refused: %s",
                        upload.filename, session.pk, exc)
    with transaction.atomic():
        Upload.objects.filter(session=session).delete()
        session.version = version.strip() if rules.valid_version(version) else ""
        rows.update(ExchangeSession, session.pk, version=session.version)


def order_state(actor: Actor, order_id: int) -> dict:
    """B10 on the order card: staff see what 1C confirmed and reported (a customer never does)."""
    actor.require(Permission.EXCHANGE_READ)
    order = orders.get_order(actor, order_id)
    state = OrderExchange.objects.filter(order=order).first() or OrderExchange(order=order)
    return {"order_id": order.pk, "version": order.version, "confirmed_version": order.one_c_confirmed_version or 0,
            "confirmed": rules.one_c_holds(order.one_c_confirmed_version, order.version),
            **{name: getattr(state, name) for name in ("one_c_id", *rules.KEPT_FACTS)}}


# ---- orders to 1C ----


def _shop_time(moment):
    return timezone.localtime(moment, ZoneInfo(settings.TIME_ZONE)).replace(tzinfo=None)


def _line_id(sku: str, name: str) -> str:
    """The line's product for 1C: its SKU, or one stable id per name, so that a product without an
    SKU is one nomenclature item in 1C, not a new one for every order."""
    return sku or f"od-{hashlib.sha1(name.casefold().encode()).hexdigest()[:24]}"


def _order_out(order: Order, status: StatusDefinition, one_c_number: str) -> OrderOut:
    lines = [
        LineOut(line_id=_line_id(item.sku, item.name), sku=item.sku, name=item.name, unit=item.unit,
                quantity=item.quantity, price=item.price, amount=item.amount, discount=item.discount,
                vat_rate=item.vat_rate, is_service=item.kind == ItemKind.SERVICE)
        for item in order.items.all()
    ]
    if order.delivery_price > 0:
        name = f"Доставка ({order.delivery_method})" if order.delivery_method else "Доставка заказа"
        lines.append(LineOut(line_id=rules.DELIVERY_LINE_ID, sku="", name=name[:255], unit="шт",
                             quantity=Decimal("1"), price=order.delivery_price, amount=order.delivery_price,
                             discount=Decimal("0"), vat_rate=payments.DELIVERY_VAT_RATE, is_service=True))
    customer = order.customer
    return OrderOut(
        document_id=str(order.pk), number=order.number, created_at=_shop_time(order.created_at),
        currency=order.currency, total=order.total, version=order.version, customer_id=f"od-{customer.pk}",
        customer_name=order.customer_name or customer.name, customer_kind=customer.kind, customer_inn=customer.inn,
        customer_email=order.customer_email, customer_phone=order.customer_phone, comment=order.comment,
        lines=tuple(lines), status_code=status.code, status_name=status.name_ru,
        status_changed_at=_shop_time(order.status_changed_at), is_final=status.is_final,
        paid=rules.paid_in_full(order.payment_status), cancelled=order.status_id == StatusCode.CANCELLED,
        delivery_method=order.delivery_method, delivery_address=order.delivery_address, one_c_number=one_c_number,
    )


def orders_due():
    """Orders 1C has not confirmed in their present version, oldest first, from the day the shop
    chose (EXCHANGE_1C_ORDERS_SINCE)."""
    due = Order.objects.filter(NOT_CONFIRMED_BY_1C)
    if settings.EXCHANGE_1C_ORDERS_SINCE:
        since = datetime.combine(date.fromisoformat(settings.EXCHANGE_1C_ORDERS_SINCE), time.min,
                                 ZoneInfo(settings.TIME_ZONE))
        due = due.filter(created_at__gte=since)
    return due.order_by("pk")


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
    """In batches of the orders' pk order, the order `confirm` locks them in: two runs of 1C at
    once cannot deadlock on PostgreSQL."""
    now = timezone.now()
    for start_at in range(0, len(handed_out), MARK_BATCH):
        with transaction.atomic():
            OrderExchange.objects.bulk_create(
                [OrderExchange(order_id=pk, queried_version=version, queried_session=session, updated_at=now)
                 for pk, version in handed_out[start_at:start_at + MARK_BATCH]],
                update_conflicts=True, unique_fields=["order"],
                update_fields=["queried_version", "queried_session", "updated_at"],
            )


def _handed_out_unconfirmed(session: ExchangeSession):
    """This session's handed-out versions that 1C has not confirmed yet (1C may confirm an older one
    than it has: a `success` repeated after a later exchange changes nothing)."""
    return OrderExchange.objects.filter(queried_session=session).filter(one_c_lacks(F("queried_version"), "order__"))


@transaction.atomic
def confirm(session: ExchangeSession) -> int:
    """`success`: 1C stored what this session's query gave it; those versions are confirmed. Each
    batch locks its orders before their exchange states, in pk order, as a document from 1C does
    (`_apply`): the two cannot deadlock."""
    candidates = list(_handed_out_unconfirmed(session).order_by("pk").values_list("pk", flat=True))
    confirmed = 0
    for start_at in range(0, len(candidates), MARK_BATCH):
        batch = candidates[start_at:start_at + MARK_BATCH]
        list(Order.objects.select_for_update(no_key=True).filter(pk__in=batch).order_by("pk").values_list("pk"))
        locked = list(_handed_out_unconfirmed(session).filter(pk__in=batch).select_for_update(of=("self",))
                      .order_by("pk").values_list("pk", flat=True))
        queried = OrderExchange.objects.filter(pk=OuterRef("pk")).values("queried_version")
        confirmed += Order.objects.filter(pk__in=locked).update(one_c_confirmed_version=Subquery(queried))
    return confirmed


# ---- 1C's files ----


def _clean_name(raw_name: str) -> str:
    if (name := rules.clean_filename(raw_name)) is None:
        raise Refused(gettext("«%(name)s» is not a file name.") % {"name": raw_name[:100]})
    return name


@transaction.atomic
def receive(session: ExchangeSession, raw_name: str, chunk: bytes) -> Upload:
    """`file`: keep a chunk of a file 1C posts, after the earlier chunks of its name."""
    name = _clean_name(raw_name)
    if not chunk:
        raise Refused(gettext("The file to import is empty."))
    upload = Upload.objects.select_for_update().filter(session=session, filename=name).first()
    if upload is not None and (rules.starts_a_file(chunk) or upload.imported_at is not None):
        upload.delete()
        upload = None
    if upload is None:
        if Upload.objects.filter(session=session).count() >= MAX_UPLOADS:
            raise Refused(gettext("More than %(count)s files in one exchange; start again with checkauth.")
                          % {"count": MAX_UPLOADS})
        upload = Upload.objects.create(session=session, filename=name,
                                       is_archive=chunk.startswith(rules.ZIP_MAGIC))
    if upload.size + len(chunk) > MAX_UPLOAD_BYTES:
        raise Refused(gettext("The file is larger than %(size)s MB.") % {"size": MAX_UPLOAD_BYTES // (1024 * 1024)})
    if upload.chunk_count >= MAX_CHUNKS:
        raise Refused(gettext("The file came in more than %(count)s parts.") % {"count": MAX_CHUNKS})
    UploadChunk.objects.create(upload=upload, position=upload.chunk_count, data=chunk)
    upload.size += len(chunk)
    upload.chunk_count += 1
    rows.update(Upload, upload.pk, size=upload.size, chunk_count=upload.chunk_count)
    return upload


def _chunks(upload: Upload):
    return (bytes(chunk.data) for chunk in upload.chunks.order_by("position").iterator(chunk_size=4))


def _upload_to_import(session: ExchangeSession, name: str) -> Upload | None:
    """The upload `import` names, or else the last archive 1C posted: 1C names the XML inside it."""
    uploads = Upload.objects.filter(session=session)
    return uploads.filter(filename=name).first() or uploads.filter(is_archive=True).order_by("-pk").first()


@dataclass(frozen=True)
class Imported:
    """How far an `import` got: done, with what 1C's log is told, or `applied` of `total` documents
    and the rest for the next call (`total` None: another call's step is at work on the file)."""

    report: list[str]
    done: bool
    applied: int
    total: int | None


# How long a step's claim on its file outlives the step's own time: reading the file and the one
# document started last. A claim left by a crash runs out after that.
STEP_CLAIM_MARGIN = timedelta(seconds=60)


def import_file(session: ExchangeSession, raw_name: str, *, seconds: float | None = None) -> Imported:
    """`import` (or `file` in the old protocol): apply every order document of the file, each in a
    transaction of its own; what could not be applied is reported line by line. Given `seconds`,
    stop starting documents once they have passed, reading the file included: the next call goes
    on from there (1C repeats `import` while the answer is `progress`), and one call's step at a
    time works on a file. The same file imported again changes nothing."""
    deadline = None if seconds is None else monotonic() + seconds
    name = _clean_name(raw_name)
    upload = _upload_to_import(session, name)
    if upload is None:
        raise Refused(gettext("The file «%(name)s» was not uploaded.") % {"name": name})
    if deadline is not None and upload.imported_at is None:
        if not _claim_step(upload, seconds) and upload.imported_at is None:
            return Imported(upload.report.splitlines(), False, upload.applied_count, None)
    if upload.imported_at is not None:
        return Imported(upload.report.splitlines(), True, upload.applied_count, upload.applied_count)
    return _import_upload(session, upload, name, deadline)


def _claim_step(upload: Upload, seconds: float) -> bool:
    """Take the file for one step unless another call's step holds it; the step then starts from
    what the steps before it recorded, read afresh."""
    now = timezone.now()
    claimed = (Upload.objects.filter(pk=upload.pk, imported_at__isnull=True)
               .filter(Q(step_until__isnull=True) | Q(step_until__lt=now))
               .update(step_until=now + timedelta(seconds=seconds) + STEP_CLAIM_MARGIN))
    upload.refresh_from_db(fields=["applied_count", "report", "imported_at"])
    return bool(claimed)


def _import_upload(session: ExchangeSession, upload: Upload, name: str, deadline: float | None = None) -> Imported:
    chunks = [commerceml.unzip(b"".join(_chunks(upload)), wanted=name)] if upload.is_archive else _chunks(upload)
    try:
        documents = list(commerceml.read_documents(chunks))  # all read before any is applied: a bad file changes nothing
    except BaseException:
        if deadline is not None:  # a step's claim (the old protocol's `file` waits here for its last chunk)
            rows.update(Upload, upload.pk, step_until=None)
        raise
    actor = actor_of(session)
    first = upload.applied_count  # an earlier step applied those; applying one again changes nothing
    report = upload.report.splitlines() if first else []
    for position in range(first, len(documents)):
        if position > first and deadline is not None and monotonic() >= deadline:
            rows.update(Upload, upload.pk, applied_count=position, report="\n".join(report), step_until=None)
            return Imported(report, False, position, len(documents))
        if line := apply_document(actor, documents[position]):
            report.append(line)
    rows.update(Upload, upload.pk, applied_count=len(documents), imported_at=timezone.now(),
                report="\n".join(report), step_until=None)
    log.info("1C import of %s: %d documents, %d remarks", name, len(documents), len(report))
    return Imported(report, True, len(documents), len(documents))


_NOTES = {
    "total_differs": _("the total in 1C differs from the order's; the order was not changed"),
    "paid_in_1c_only": _("1C reports a payment that orderdesk has not received; kept as 1C's fact"),
}


def _note_text(note: str) -> str:
    code, *arguments = note.split(":", 2)
    if code == "status_not_allowed":
        target, current = arguments
        return str(_("1C's status «%(target)s» cannot follow «%(current)s»")
                   % {"target": StatusDefinition.name_of(target), "current": StatusDefinition.name_of(current)})
    if code == "refused":
        what, reason = arguments
        return str(_("«%(what)s» was refused: %(reason)s") % {"what": _what(what), "reason": reason})
    return str(_NOTES[code])


def _what(move: str) -> str:
    return str(_("the deletion mark")) if move == "deletion_mark" else StatusDefinition.name_of(move)


_ORDER_NUMBERED = rows.Prepared(lambda number: Order.objects.filter(number=number).values_list("id"), number=str)


def _find_order(document: rules.OneCDocument) -> int | None:
    number = document.number.strip()
    found = _ORDER_NUMBERED.scalar(number=number) if number else None
    if found is None and document.one_c_id:
        return OrderExchange.objects.filter(one_c_id=document.one_c_id).values_list("order_id", flat=True).first()
    return found


def _stored(name: str, value):
    """A fact as its column holds it: dates in the shop's zone, text cut to the column's length
    (1C's own fields are longer than some of ours)."""
    if name in rules.DATE_FACTS:
        return timezone.make_aware(value, ZoneInfo(settings.TIME_ZONE)) if value is not None else None
    if isinstance(value, str):
        return value[:OrderExchange._meta.get_field(name).max_length]
    return value


def apply_document(actor: Actor, document: rules.OneCDocument) -> str | None:
    """One document of 1C's, in a transaction of its own: the facts it states kept on the order,
    the moves they imply made through the order services (so the history, the customer and the
    rules see them as any other change), and, if 1C held the order as it was, its new version
    counted as known to 1C, so 1C's own change does not bounce back to it. Returns a line for
    1C's log when something could not be followed; a document that fails changes nothing and
    holds up no other."""
    if document.operation and document.operation != rules.ORDER_OPERATION:
        return None  # 2.10's payment and shipment documents: their facts also come on the order
    order_id = _find_order(document)
    if order_id is None:
        return str(_("Order №%(number)s was not found on the site.") % {"number": document.number})
    try:
        with transaction.atomic():
            notes = _apply(actor, order_id, document)
    except (DomainError, DatabaseError) as exc:
        log.warning("1C exchange: document for order %s not applied: %s", document.number, exc)
        failure = str(exc.message) if isinstance(exc, DomainError) else gettext("the database refused it")
        return str(_("Order №%(number)s was not changed: %(reason)s") % {"number": document.number, "reason": failure})
    if not notes:
        return None
    return str(_("Order №%(number)s: %(notes)s") % {"number": document.number, "notes": "; ".join(map(_note_text, notes))})


def _apply(actor: Actor, order_id: int, document: rules.OneCDocument) -> list[str] | None:
    order = orders.locked_order(order_id)
    state, _created = OrderExchange.objects.select_for_update().get_or_create(order=order)
    if state.applied_digest == document.digest:
        return None
    known_to_1c = rules.one_c_holds(order.one_c_confirmed_version, order.version)
    plan = rules.plan(rules.OrderNow(order.status_id, order.deletion_mark, order.total, order.payment_status),
                      document)
    notes = list(plan.notes)
    for status in plan.statuses:
        try:
            with transaction.atomic():
                payments.change_status(actor, order.pk, status)
        except DomainError as exc:
            notes.append(f"refused:{status}:{exc.message}")
            break
    if plan.deletion_mark is not None:
        try:
            with transaction.atomic():
                orders.set_removal_mark(actor, order.pk, plan.deletion_mark)
        except DomainError as exc:
            notes.append(f"refused:deletion_mark:{exc.message}")
    stated = {name: _stored(name, document.facts[name]) for name in rules.KEPT_FACTS if name in document.facts}
    if document.one_c_id:
        stated["one_c_id"] = _stored("one_c_id", document.one_c_id)
    changes = {name: [_plain(getattr(state, name)), _plain(value)] for name, value in stated.items()
               if getattr(state, name) != value}
    order = orders.locked_order(order.pk)
    if changes or notes:
        events.record(order, "order.1c.updated", actor, {**changes, "notes": notes})
    for name, value in stated.items():
        setattr(state, name, value)
    state.applied_digest = document.digest
    if known_to_1c:  # 1C's own change is not news to 1C; a change of ours it has not had still is
        rows.update(Order, order.pk, one_c_confirmed_version=order.version)
    state.updated_at = timezone.now()
    state.save()
    return notes


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value
