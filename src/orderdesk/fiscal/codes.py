"""FFD 1.2 codes the receipts carry (fiscal.md §1). Raw tag values; each driver maps them to
its provider's names."""

from enum import IntEnum, StrEnum


class Settlement(IntEnum):
    """Tag 1054, признак расчёта."""

    INCOME = 1  # приход
    INCOME_REFUND = 2  # возврат прихода


class PaymentMethod(IntEnum):
    """Tag 1214, признак способа расчёта."""

    FULL_PREPAYMENT = 1  # предоплата 100%
    PREPAYMENT = 2  # предоплата
    ADVANCE = 3  # аванс
    FULL_PAYMENT = 4  # полный расчёт
    PARTIAL_PAYMENT_AND_CREDIT = 5  # частичный расчёт и кредит
    CREDIT_TRANSFER = 6  # передача в кредит
    CREDIT_PAYMENT = 7  # оплата кредита


class Subject(IntEnum):
    """Tag 1212, признак предмета расчёта (the values we use)."""

    GOODS = 1
    WORK = 3
    SERVICE = 4
    PAYMENT = 10  # аванс, задаток, предоплата, кредит


class Vat(IntEnum):
    """Tag 1199, ставка НДС."""

    VAT20 = 1
    VAT10 = 2
    VAT120 = 3  # 20/120
    VAT110 = 4  # 10/110
    VAT0 = 5
    NONE = 6
    VAT5 = 7
    VAT7 = 8
    VAT105 = 9  # 5/105
    VAT107 = 10  # 7/107
    VAT22 = 11
    VAT122 = 12  # 22/122


class Measure(IntEnum):
    """Tag 2108 (FFD 1.2), the measures our units map to."""

    PIECE = 0
    GRAM = 10
    KILOGRAM = 11
    TON = 12
    METER = 22
    LITER = 41
    MILLILITER = 40
    HOUR = 71
    DAY = 70
    OTHER = 255


class Taxation(StrEnum):
    """Tag 1055, система налогообложения, under ATOL Online's names."""

    OSN = "osn"
    USN_INCOME = "usn_income"
    USN_INCOME_OUTCOME = "usn_income_outcome"
    ESN = "esn"
    PATENT = "patent"


class PaymentForm(StrEnum):
    """How the receipt total is paid: tags 1031, 1081, 1215, 1216."""

    CASH = "cash"  # 1031
    ELECTRONIC = "electronic"  # 1081
    PREPAYMENT = "prepayment"  # 1215, offset of advances
    CREDIT = "credit"  # 1216, postpayment
