"""CommerceML 2 documents: our orders written for 1C, and 1C's documents read back (commerceml.md
§2 and §3). lxml writes the orders one `Документ` at a time into the answer's file; 1C's files
are pulled through the parser chunk by chunk with entities unresolved and no DTD or network
access, and a file that declares a DOCTYPE at all is refused (XML bombs and external entities
need one).
"""

import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO

from django.utils.translation import gettext as _
from lxml import etree

from orderdesk.exchange import rules
from orderdesk.exchange.rules import OneCDocument
from orderdesk.fiscal.rules import percent_on, vat_amount, vat_code

# ---- site → 1C ----


@dataclass(frozen=True)
class Unit:
    code: str  # OKEI
    full_name: str
    international: str


UNITS = {
    "шт": Unit("796", "Штука", "PCE"), "кг": Unit("166", "Килограмм", "KGM"), "г": Unit("163", "Грамм", "GRM"),
    "л": Unit("112", "Литр", "LTR"), "м": Unit("006", "Метр", "MTR"), "усл": Unit("796", "Штука", "PCE"),
}
PIECE = UNITS["шт"]


@dataclass(frozen=True)
class LineOut:
    line_id: str
    sku: str
    name: str
    unit: str
    quantity: Decimal
    price: Decimal
    amount: Decimal  # quantity × price less the discount
    discount: Decimal
    vat_rate: str  # an order item's rate code (orders.rules.VAT_RATES)
    is_service: bool


@dataclass(frozen=True)
class OrderOut:
    """An order as 1C gets it."""

    document_id: str
    number: str
    created_at: datetime  # in the shop's local time
    currency: str
    total: Decimal
    version: int
    customer_id: str
    customer_name: str
    customer_kind: str  # person, company, sole_trader
    customer_inn: str
    customer_email: str
    customer_phone: str
    comment: str
    lines: tuple[LineOut, ...]
    status_code: str
    status_name: str
    status_changed_at: datetime
    is_final: bool
    paid: bool
    cancelled: bool
    delivery_method: str
    delivery_address: str
    one_c_number: str = ""


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def _quantity(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


# Characters XML 1.0 cannot hold at all; the API lets the control ones into a name or a comment.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attributes) -> etree._Element:
    element = etree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = _NOT_IN_XML.sub("", text)
    return element


def _requisites(parent: etree._Element, pairs: Iterable[tuple[str, str]]) -> None:
    holder = _sub(parent, "ЗначенияРеквизитов")
    for name, value in pairs:
        pair = _sub(holder, "ЗначениеРеквизита")
        _sub(pair, "Наименование", name)
        _sub(pair, "Значение", value)


def _tax(parent: etree._Element, amount: Decimal) -> None:
    tax = _sub(_sub(parent, "Налоги"), "Налог")
    _sub(tax, "Наименование", "НДС")
    _sub(tax, "УчтеноВСумме", "true")  # our prices include VAT
    _sub(tax, "Сумма", _money(amount))


def _line_vat(line: LineOut, day: date) -> tuple[int | None, Decimal]:
    return percent_on(line.vat_rate, day), vat_amount(line.amount, vat_code(line.vat_rate, day, calculated=False))


def _counterparty(parent: etree._Element, order: OrderOut) -> None:
    party = _sub(_sub(parent, "Контрагенты"), "Контрагент")
    _sub(party, "Ид", order.customer_id)
    _sub(party, "Наименование", order.customer_name)
    if order.customer_kind == "company":
        _sub(party, "ОфициальноеНаименование", order.customer_name)
    else:
        _sub(party, "ПолноеНаименование", order.customer_name)
    if order.customer_inn:
        _sub(party, "ИНН", order.customer_inn)
    if order.delivery_address:
        _sub(_sub(party, "Адрес"), "Представление", order.delivery_address)
    contacts = [("Электронная почта", order.customer_email), ("Телефон рабочий", order.customer_phone)]
    if any(value for _, value in contacts):
        holder = _sub(party, "Контакты")
        for kind, value in contacts:
            if value:
                contact = _sub(holder, "Контакт")
                _sub(contact, "Тип", kind)
                _sub(contact, "Значение", value)
    _sub(party, "Роль", "Покупатель")


def _product(parent: etree._Element, line: LineOut, day: date, version: str) -> Decimal:
    product = _sub(parent, "Товар")
    _sub(product, "Ид", line.line_id)
    if line.sku:
        _sub(product, "Артикул", line.sku)
    _sub(product, "Наименование", line.name)
    unit = UNITS.get(line.unit.casefold(), PIECE)
    if rules.uses_base_unit(version):
        _sub(product, "БазоваяЕдиница", line.unit, Код=unit.code, НаименованиеПолное=unit.full_name,
             МеждународноеСокращение=unit.international)
    _sub(product, "ЦенаЗаЕдиницу", _money(line.price))
    _sub(product, "Количество", _quantity(line.quantity))
    _sub(product, "Сумма", _money(line.amount))
    if line.discount:  # so 1C's price × quantity less the discount is our sum
        discount = _sub(_sub(product, "Скидки"), "Скидка")
        _sub(discount, "Наименование", "Скидка на товар")
        _sub(discount, "Сумма", _money(line.discount))
        _sub(discount, "УчтеноВСумме", "true")
    if not rules.uses_base_unit(version):
        measure = _sub(product, "Единица")
        _sub(measure, "Код", unit.code)
        _sub(measure, "НаименованиеПолное", unit.full_name)
        _sub(product, "Коэффициент", "1")
    percent, vat = _line_vat(line, day)
    if percent is not None:
        rate = _sub(_sub(product, "СтавкиНалогов"), "СтавкаНалога")
        _sub(rate, "Наименование", "НДС")
        _sub(rate, "Ставка", str(percent))
        _tax(product, vat)
    kind = "Услуга" if line.is_service else "Товар"
    _requisites(product, [("ВидНоменклатуры", kind), ("ТипНоменклатуры", kind)])
    return vat


def order_document(order: OrderOut, version: str) -> etree._Element:
    """One order's `Документ` in the element order Bitrix writes, which 1C is proven to read."""
    document = etree.Element("Документ")
    _sub(document, "Ид", order.document_id)
    _sub(document, "Номер", order.number)
    _sub(document, "Дата", order.created_at.strftime("%Y-%m-%d"))
    _sub(document, "ХозОперация", "Заказ товара")
    _sub(document, "Роль", "Продавец")
    _sub(document, "Валюта", order.currency)
    _sub(document, "Курс", "1")
    _sub(document, "Сумма", _money(order.total))
    if not rules.uses_base_unit(version):
        _sub(document, "НомерВерсии", str(order.version))
        if order.one_c_number:
            _sub(document, "Номер1С", order.one_c_number)
    _counterparty(document, order)
    _sub(document, "Время", order.created_at.strftime("%H:%M:%S"))
    if order.comment:
        _sub(document, "Комментарий", order.comment)
    day = order.created_at.date()
    products = etree.Element("Товары")
    vat_total = sum((_product(products, line, day, version) for line in order.lines), Decimal("0.00"))
    if vat_total:
        _tax(document, vat_total)
    document.append(products)
    changed = order.status_changed_at.strftime(
        "%d.%m.%Y %H:%M:%S" if rules.uses_base_unit(version) else "%Y-%m-%dT%H:%M:%S")
    _requisites(document, [
        ("Заказ оплачен", _flag(order.paid)),
        ("Отменен", _flag(order.cancelled)),
        ("Финальный статус", _flag(order.is_final)),
        ("Статус заказа", f"[{order.status_code}] {order.status_name}"),
        ("Статуса заказа ИД", order.status_code),
        ("Дата изменения статуса", changed),
        ("Способ доставки", order.delivery_method),
        ("Адрес доставки", order.delivery_address),
    ])
    return document


def write_orders(out: BinaryIO, orders: Iterable[OrderOut], *, version: str, charset: str,
                 generated_at: datetime) -> int:
    """The answer to `query`: the declaration (and a BOM for UTF-8, which some 1C builds need),
    the root, one `Документ` per order; how many were written."""
    encoding = "windows-1251" if charset.lower() in ("windows-1251", "cp1251") else "UTF-8"
    if encoding == "UTF-8":
        out.write(b"\xef\xbb\xbf")
    out.write(f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode("ascii"))
    written = 0
    with etree.xmlfile(out, encoding=encoding) as xml:
        with xml.element("КоммерческаяИнформация", {
            "ВерсияСхемы": version, "ДатаФормирования": generated_at.strftime("%Y-%m-%dT%H:%M:%S"),
            "ФорматДаты": "ДФ=yyyy-MM-dd; ДЛФ=DT", "ФорматВремени": "ДФ=ЧЧ:мм:сс; ДЛФ=T",
            "РазделительДатаВремя": "T", "ФорматСуммы": "ЧЦ=18; ЧДЦ=2; ЧРД=.",
            "ФорматКоличества": "ЧЦ=18; ЧДЦ=3; ЧРД=.",
        }):
            for order in orders:
                xml.write(order_document(order, version))
                written += 1
    return written


# ---- 1C → site ----


class Refused(Exception):
    """A file we will not read; the message is for 1C's exchange log."""


class Incomplete(Refused):
    """A file that ends before it should: broken, or (in the old protocol) still coming in chunks."""


MAX_ZIP_MEMBERS = 100
MAX_EXPANDED_BYTES = 64 * 1024 * 1024
MAX_ZIP_RATIO = 200  # deflate reaches ~100:1 on real XML; a bomb goes far beyond


# What zipfile raises while reading a member that cannot be read, each for its own reason:
# BadZipFile — the stream fails its CRC (a bomb lying about its size does), zlib.error — the
# deflate stream is corrupt, EOFError — the stream ends early, NotImplementedError — a compression
# method zipfile does not have, RuntimeError — the member is encrypted.
_UNREADABLE_MEMBER = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def _archive(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        # The directory is at an archive's end: one cut short cannot be told from one broken.
        raise Incomplete(_("The archive is damaged: %(error)s") % {"error": exc}) from exc


def unzip(data: bytes, wanted: str | None = None) -> bytes:
    """The XML inside an archive 1C posted: the member named `wanted`, or the first `.xml` one.
    The sizes the archive declares are checked before anything is expanded, and the expansion
    itself is capped, so a bomb is refused without being unpacked."""
    archive = _archive(data)
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise Refused(_("The archive holds more than %(count)s files.") % {"count": MAX_ZIP_MEMBERS})
    declared = sum(m.file_size for m in members)
    if declared > MAX_EXPANDED_BYTES or declared > MAX_ZIP_RATIO * max(len(data), 1):
        raise Refused(_("The archive expands to too much data."))
    xml_members = [m for m in members if m.filename.lower().endswith(".xml")]
    chosen = next((m for m in xml_members if wanted and rules.clean_filename(m.filename) == wanted),
                  xml_members[0] if xml_members else None)
    if chosen is None:
        raise Refused(_("The archive holds no XML file."))
    try:
        with archive.open(chosen) as member:
            content = member.read(MAX_EXPANDED_BYTES + 1)
    except _UNREADABLE_MEMBER as exc:
        raise Refused(_("The archive is damaged: %(error)s") % {"error": exc}) from exc
    if len(content) > MAX_EXPANDED_BYTES:
        raise Refused(_("The archive expands to too much data."))
    return content


def _local(tag) -> str:
    """Element names without the namespace 1C declares (`urn:1C.ru:commerceml_2`)."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: etree._Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _requisite_values(document: etree._Element) -> dict[str, str]:
    """{folded name: value} of the document's requisites, with or without their
    `ЗначенияРеквизитов` wrapper (some 1C processings leave it out)."""
    values: dict[str, str] = {}
    holders = [document] + [c for c in document if _local(c.tag) == "ЗначенияРеквизитов"]
    for holder in holders:
        for pair in holder:
            if _local(pair.tag) != "ЗначениеРеквизита":
                continue
            name = _child_text(pair, "Наименование")
            if name:
                values[rules.requisite_key(name)] = _child_text(pair, "Значение") or ""
    return values


def _element_values(document: etree._Element) -> dict[str, str]:
    return {rules.requisite_key(_local(c.tag)): (c.text or "").strip() for c in document if len(c) == 0}


def read_document(document: etree._Element) -> OneCDocument:
    return OneCDocument(
        number=_child_text(document, "Номер") or "",
        one_c_id=_child_text(document, "Ид") or "",
        operation=(_child_text(document, "ХозОперация") or "").casefold(),
        total=rules.parse_number(_child_text(document, "Сумма")),
        facts=rules.read_facts(_element_values(document), _requisite_values(document)),
        digest=hashlib.sha256(etree.tostring(document, method="c14n")).hexdigest(),
    )


def _events(chunks: Iterable[bytes]) -> Iterator[tuple[str, etree._Element]]:
    """The parser's events over a file fed chunk by chunk, entities unresolved, no DTD loaded and
    no network; a DOCTYPE or a root other than `КоммерческаяИнформация` is refused at the root,
    and a file that breaks off is Incomplete."""
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False, remove_comments=True, remove_pis=True)
    root_seen = False

    def fed():
        for chunk in chunks:
            parser.feed(chunk)
            yield
        try:
            parser.close()
        except etree.XMLSyntaxError as exc:  # what was fed parsed; only its end is missing
            raise Incomplete(_("The file ends before its root element does.")) from exc
        yield

    try:
        for _fed in fed():
            for event, element in parser.read_events():
                if not root_seen:
                    root_seen = True
                    if element.getroottree().docinfo.doctype:
                        raise Refused(_("A file with a DOCTYPE is not accepted (external entities, XML bombs)."))
                    if _local(element.tag) != "КоммерческаяИнформация":
                        raise Refused(_("The root element is «%(root)s», not «КоммерческаяИнформация».")
                                      % {"root": _local(element.tag)})
                yield event, element
    except etree.XMLSyntaxError as exc:
        raise Refused(_("The file is not well-formed XML: %(error)s") % {"error": exc}) from exc
    if not root_seen:
        raise Refused(_("The file is empty."))


def read_documents(chunks: Iterable[bytes]) -> Iterator[OneCDocument]:
    """Every order-level `Документ` of a file 1C uploaded, one at a time, at any depth (2.x puts
    them under the root, 3.1 in a `Контейнер` each); read chunk by chunk, each document dropped
    once read. Raises Refused for a file that is not whole, well-formed CommerceML."""
    for event, element in _events(chunks):
        if event == "end" and _local(element.tag) == "Документ" and _is_order_level(element):
            yield read_document(element)
            _forget(element)


def _forget(element: etree._Element) -> None:
    """Drop an element already read, and those before it, so a large file is read in little memory."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    while element.getprevious() is not None:
        del parent[0]


def _is_order_level(element: etree._Element) -> bool:
    """A `Документ` of its own: under the root or a `Контейнер`, not a subordinate document of an order."""
    parent = element.getparent()
    return parent is not None and _local(parent.tag) in ("КоммерческаяИнформация", "Контейнер")
