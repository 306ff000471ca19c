"""A receipt as the buyer reads it: the printed form in text, and HTML with its fiscal QR code."""

from decimal import Decimal
from html import escape

import segno
from django.utils import timezone

from orderdesk.fiscal.codes import PaymentMethod, Settlement, Subject, Vat
from orderdesk.fiscal.models import Receipt

METHOD_NAMES = {
    PaymentMethod.FULL_PREPAYMENT: "ПРЕДОПЛАТА 100%", PaymentMethod.PREPAYMENT: "ПРЕДОПЛАТА",
    PaymentMethod.ADVANCE: "АВАНС", PaymentMethod.FULL_PAYMENT: "ПОЛНЫЙ РАСЧЕТ",
    PaymentMethod.PARTIAL_PAYMENT_AND_CREDIT: "ЧАСТИЧНЫЙ РАСЧЕТ И КРЕДИТ",
    PaymentMethod.CREDIT_TRANSFER: "ПЕРЕДАЧА В КРЕДИТ", PaymentMethod.CREDIT_PAYMENT: "ОПЛАТА КРЕДИТА",
}
SUBJECT_NAMES = {Subject.GOODS: "ТОВАР", Subject.WORK: "РАБОТА", Subject.SERVICE: "УСЛУГА", Subject.PAYMENT: "ПЛАТЕЖ"}
VAT_NAMES = {
    Vat.VAT20: "НДС 20%", Vat.VAT10: "НДС 10%", Vat.VAT120: "НДС 20/120", Vat.VAT110: "НДС 10/110",
    Vat.VAT0: "НДС 0%", Vat.NONE: "БЕЗ НДС", Vat.VAT5: "НДС 5%", Vat.VAT7: "НДС 7%", Vat.VAT105: "НДС 5/105",
    Vat.VAT107: "НДС 7/107", Vat.VAT22: "НДС 22%", Vat.VAT122: "НДС 22/122",
}
PAYMENT_NAMES = [("cash", "НАЛИЧНЫМИ"), ("electronic", "БЕЗНАЛИЧНЫМИ"),
                 ("prepayment", "ПРЕДВАРИТЕЛЬНАЯ ОПЛАТА (АВАНС)"), ("credit", "ПОСЛЕДУЮЩАЯ ОПЛАТА (КРЕДИТ)")]
TAXATION_NAMES = {"osn": "ОСН", "usn_income": "УСН доход", "usn_income_outcome": "УСН доход - расход",
                  "esn": "ЕСХН", "patent": "ПСН"}
WIDTH = 42


def _money(value: Decimal) -> str:
    return f"{value:,.2f}".replace(",", " ").replace(".", ",")


def _row(left: str, right: str) -> str:
    return f"{left}{' ' * max(1, WIDTH - len(left) - len(right))}{right}"


def render_text(receipt: Receipt) -> str:
    register = receipt.register
    lines = [
        register.name.center(WIDTH), f"ИНН {register.company_inn}".center(WIDTH), register.payment_address[:WIDTH],
        "КАССОВЫЙ ЧЕК".center(WIDTH),
        ("ПРИХОД" if receipt.settlement == Settlement.INCOME else "ВОЗВРАТ ПРИХОДА").center(WIDTH),
        f"Заказ №{receipt.order.number}", "-" * WIDTH,
    ]
    for line in receipt.lines.all():
        lines += [
            f"{line.position}. {line.name}",
            _row(f"   {line.quantity.normalize():f} x {_money(line.price)}", _money(line.amount)),
            f"   {METHOD_NAMES[PaymentMethod(line.payment_method)]}, {SUBJECT_NAMES[Subject(line.subject)]}",
            _row(f"   {VAT_NAMES[Vat(line.vat)]}", _money(line.vat_amount)),
        ]
    lines += ["-" * WIDTH, _row("ИТОГ", _money(receipt.total))]
    lines += [_row(name, _money(getattr(receipt, form))) for form, name in PAYMENT_NAMES if getattr(receipt, form)]
    lines += [f"СНО: {TAXATION_NAMES.get(receipt.taxation, receipt.taxation)}",
              f"ЭЛ. АДР. ОТПРАВИТЕЛЯ: {register.company_email}"]
    if receipt.buyer_contact:
        lines.append(f"ПОКУПАТЕЛЬ: {receipt.buyer_contact}")
    if receipt.buyer_name:
        lines.append(f"ПОКУПАТЕЛЬ: {receipt.buyer_name}, ИНН {receipt.buyer_inn}")
    if receipt.cashier:
        lines.append(f"КАССИР: {receipt.cashier}")
    if receipt.state == Receipt.State.REGISTERED:
        moment = timezone.localtime(receipt.registered_at).strftime("%d.%m.%Y %H:%M")
        lines += [_row(f"СМЕНА {receipt.shift_number}", moment), f"ФН {receipt.fn_number}",
                  _row(f"ФД {receipt.fd_number}", f"ФП {receipt.fiscal_sign}"), f"QR: {receipt.qr_string}"]
    else:
        lines.append(f"ОЖИДАЕТ РЕГИСТРАЦИИ ({receipt.get_state_display()})")
    return "\n".join(lines)


def render_html(receipt: Receipt) -> str:
    qr = segno.make(receipt.qr_string, error="m").svg_inline(scale=3) if receipt.qr_string else ""
    return f'<div class="receipt"><pre>{escape(render_text(receipt))}</pre>{qr}</div>'
