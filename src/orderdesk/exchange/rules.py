"""Pure decisions of the CommerceML exchange with 1C (B10): how 1C writes numbers, dates, flags and
file names, and what a document 1C sends back means for our order. No Django and no I/O.

The conventions are those of `commerceml.md` (the Bitrix «sale» exchange, which 1C's
configurations are tested against).
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from orderdesk.orders.rules import PaymentStatus, StatusCode, transition_allowed


class Reply(StrEnum):
    """The first line of every status answer; 1C reads nothing else to decide."""

    SUCCESS = "success"
    PROGRESS = "progress"  # call me again: the work goes on
    FAILURE = "failure"


SUPPORTED_TYPES = frozenset({"sale"})
SALE_MODES = frozenset({"checkauth", "init", "query", "success", "file", "import", "deactivate", "complete"})
NEWER_SCHEMA_VERSION = "2.08"  # the shape we write for a 1C that names a version we do not write
OLD_PROTOCOL_VERSION = "2.05"  # what a 1C that names no version expects (Bitrix's default)
_VERSION = re.compile(r"^\d\.\d{1,2}$")

DELIVERY_LINE_ID = "ORDER_DELIVERY"
ORDER_OPERATION = "заказ товара"
_SETTLED = frozenset({PaymentStatus.PAID, PaymentStatus.OVERPAID})


def _as_number(version: str) -> Decimal | None:
    """Versions are decimal numbers, as Bitrix compares them: 2.1 is 2.10, after 2.09."""
    return Decimal(version.strip()) if _VERSION.match(version.strip()) else None


def schema_version(requested: str) -> str:
    """The schema version our answer declares: the one 1C asked for at `init` if it is a 2.x whose
    shape we write (an order `Документ` straight under the root, 2.09 at most), 2.05 when 1C named
    none, else 2.08."""
    version = _as_number(requested)
    if version is None:
        return OLD_PROTOCOL_VERSION if not requested.strip() else NEWER_SCHEMA_VERSION
    return requested.strip() if Decimal("2") <= version <= Decimal("2.09") else NEWER_SCHEMA_VERSION


def valid_version(requested: str) -> bool:
    return _as_number(requested) is not None


def uses_base_unit(version: str) -> bool:
    """2.05 and older name the unit in `БазоваяЕдиница`; Bitrix's later exporter writes
    `Единица` and `Коэффициент` instead, and 1C reads what its version expects."""
    number = _as_number(version)
    return number is not None and number <= Decimal("2.05")


# ---- what 1C writes ----

_NUMBER_NOISE = re.compile(r"[\s\u00a0\u202f']")


def parse_number(text: str | None) -> Decimal | None:
    """1C writes `1 600`, `23 000,50` (spaces or non-breaking spaces between thousands, a comma
    for the point) as well as `1600.00`; None for an empty or unreadable value."""
    if text is None:
        return None
    cleaned = _NUMBER_NOISE.sub("", text).replace(",", ".")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
                 "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")


def parse_datetime(text: str | None) -> datetime | None:
    """A date of 1C's: ISO (`2026-03-15T10:20:00`) or Russian (`15.03.2026 10:20:00`), in the shop's
    local time (CommerceML carries no offset). An empty date arrives as `T`, nothing, or 1C's
    empty date `0001-01-01`: all of them mean "no date"."""
    if text is None:
        return None
    value = text.strip().removesuffix("Z")
    if value in ("", "T") or value.startswith("0001-01-01") or value.startswith("01.01.0001"):
        return None
    value = value.split(".", 1)[0] if "T" in value or value[:4].isdigit() else value  # fractions of a second
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


_TRUE = frozenset({"true", "да", "1", "yes", "истина"})
_FALSE = frozenset({"false", "нет", "0", "no", "ложь"})


def parse_flag(text: str | None) -> bool | None:
    """`true`/`false` as the schema says, and the `Да`/`Нет` some 1C processings write; None when absent."""
    if text is None:
        return None
    value = text.strip().casefold()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def requisite_key(name: str) -> str:
    """Requisite names differ in case and spacing between 1C configurations: compare folded."""
    return " ".join(name.split()).casefold()


_FORBIDDEN_IN_NAMES = re.compile(r"[\x00-\x1f<>:\"|?*]")
MAX_FILENAME = 200


def clean_filename(raw: str) -> str | None:
    """The name an upload is kept under: the last part of what 1C sent, which may be a temporary
    name or a whole Windows path (`C:\\v8_8789_c.xml`); None for a name that is no file name at all
    (empty, `..`, control characters). Never used as a path: uploads live in the database."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = unicodedata.normalize("NFC", name)
    if not name or name in (".", "..") or len(name) > MAX_FILENAME or _FORBIDDEN_IN_NAMES.search(name):
        return None
    return name


ZIP_MAGIC = b"PK\x03\x04"


def starts_a_file(chunk: bytes) -> bool:
    """A chunk that opens with an XML declaration or a ZIP header is a new upload of its name, not
    the next piece of the old one (1C sends a file anew under the same name)."""
    head = chunk[:16].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<?xml") or head.startswith(ZIP_MAGIC)


# ---- what we tell 1C of an order ----


def paid_in_full(payment_status: str) -> bool:
    """`Заказ оплачен`: only when the whole order is paid; a part paid is not paid for 1C."""
    return payment_status in _SETTLED


def one_c_holds(confirmed_version: int | None, version: int) -> bool:
    """1C has confirmed the order as it is now (None: 1C has confirmed no version of it)."""
    return confirmed_version is not None and confirmed_version >= version


# ---- what a document from 1C says ----


@dataclass(frozen=True)
class OneCDocument:
    """One `Документ` 1C sent back, read into plain values. `facts` holds only what the document
    says: a requisite it leaves out changes nothing, an empty one (a date written `T`) clears."""

    number: str  # ours: 1C keeps the site's number in `Номер`
    one_c_id: str = ""  # 1C's own GUID of its copy
    operation: str = ORDER_OPERATION
    total: Decimal | None = None
    facts: dict = field(default_factory=dict)  # OrderExchange field -> value, for those present
    digest: str = ""  # of the document's canonical XML: the same document twice is one effect

    def fact(self, name: str):
        return self.facts.get(name)


REQUISITES = {  # folded requisite name -> the fact (an OrderExchange field, or a move)
    "номер по 1с": "one_c_number",
    "дата по 1с": "one_c_date",
    "проведен": "posted",
    "пометкаудаления": "deletion_mark",
    "пометка удаления": "deletion_mark",
    "отменен": "cancelled",
    "статус заказа": "one_c_status",
    "дата оплаты по 1с": "paid_at",
    "номер оплаты по 1с": "payment_number",
    "дата отгрузки по 1с": "shipped_at",
    "номер отгрузки по 1с": "shipment_number",
}
ELEMENTS = {  # the same facts as elements of `Документ` (Bitrix's 2.08+ and 3.1 shape)
    "номер1с": "one_c_number",
    "дата1с": "one_c_date",
    "пометкаудаления": "deletion_mark",
    "проведен": "posted",
    "отменен": "cancelled",
}
DATE_FACTS = frozenset({"one_c_date", "paid_at", "shipped_at"})
# What is kept of 1C's copy; the deletion mark and the cancellation become moves of the order.
KEPT_FACTS = ("one_c_number", "one_c_date", "posted", "one_c_status", "paid_at", "payment_number", "shipped_at",
              "shipment_number")
_FLAGS = frozenset({"posted", "deletion_mark", "cancelled"})


def read_facts(elements: dict[str, str], requisites: dict[str, str]) -> dict:
    """The facts a document states, from its elements and its requisites ({folded name: text});
    a requisite wins over the element of the same meaning."""
    facts: dict = {}
    for table, values in ((ELEMENTS, elements), (REQUISITES, requisites)):
        for name, attribute in table.items():
            if name not in values:
                continue
            text = values[name]
            if attribute in DATE_FACTS:
                facts[attribute] = parse_datetime(text)
            elif attribute in _FLAGS:
                if (flag := parse_flag(text)) is not None:
                    facts[attribute] = flag
            else:
                facts[attribute] = text.strip()
    return facts


@dataclass(frozen=True)
class OrderNow:
    """What the plan needs of our order."""

    status: str
    deletion_mark: bool
    total: Decimal
    payment_status: str


@dataclass
class Plan:
    """What 1C's document changes on our side, and what it says that we cannot follow."""

    statuses: list[str] = field(default_factory=list)  # moves in order
    deletion_mark: bool | None = None
    notes: list[str] = field(default_factory=list)  # "code[:argument…]" of what a person should look at


def plan(order: OrderNow, doc: OneCDocument) -> Plan:
    """1C's facts turned into our moves (commerceml.md §8): posted → «Agreed», shipped → «Shipped»,
    cancelled → «Cancelled», the deletion mark both ways. A payment 1C recorded is kept as 1C's fact
    only: 1C fiscalised it, so we neither invent a payment of unknown amount nor print a receipt.
    A move the lifecycle does not allow is noted, never forced. 1C's `false` undoes nothing: 1C
    writes it on every document, also on orders that we cancelled or that have not reached it."""
    result = Plan()
    status = order.status
    wanted: list[str] = []
    if doc.fact("cancelled"):
        wanted.append(StatusCode.CANCELLED)
    else:
        if doc.fact("posted") and status == StatusCode.PENDING_APPROVAL:
            wanted.append(StatusCode.AGREED)
        if doc.fact("shipped_at") is not None:
            wanted.append(StatusCode.SHIPPED)
    for target in wanted:
        if target == status or (target == StatusCode.SHIPPED and status in _BEYOND_SHIPPED):
            continue
        if transition_allowed(status, target):
            result.statuses.append(target)
            status = target
        else:
            result.notes.append(f"status_not_allowed:{target}:{status}")
    mark = doc.fact("deletion_mark")
    if mark is not None and mark != order.deletion_mark:
        result.deletion_mark = mark
    if doc.total is not None and doc.total != order.total and not (mark or doc.fact("cancelled")):
        result.notes.append("total_differs")
    if doc.fact("paid_at") is not None and not paid_in_full(order.payment_status):
        result.notes.append("paid_in_1c_only")
    return result


_BEYOND_SHIPPED = frozenset({StatusCode.ISSUED, StatusCode.CLOSED})
