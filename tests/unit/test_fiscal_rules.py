"""The pure receipt composer (fiscal/rules.py): which receipts a change to an order owes and what
they say, to FFD 1.2 (fiscal.md §1–§2). Rules R1, R3–R5, R7–R9, R12, B1–B5, B13. No database here.

Codes are written as the raw tag values (1054, 1214, 1212, 1199) so a wrong enum member can't hide
behind a right-looking name."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderdesk.fiscal.codes import Measure, PaymentForm, Vat
from orderdesk.fiscal.rules import (
    HandOver,
    Item,
    OrderState,
    PayerKind,
    Payment,
    PayMethod,
    PrepaymentStyle,
    Purpose,
    QuickSale,
    Refund,
    Settings,
    hand_over_receipts,
    receipt_required,
    receipts_owed,
    split,
    vat_amount,
    vat_code,
)

D = Decimal
DAY_2026 = date(2026, 3, 2)
DAY_2025 = date(2025, 6, 10)
CASH, ELECTRONIC, PREPAYMENT, CREDIT = PaymentForm.CASH, PaymentForm.ELECTRONIC, PaymentForm.PREPAYMENT, PaymentForm.CREDIT

# Tag 1199 → the percentage, written out here rather than borrowed from the code under test.
PERCENT_OF_1199 = {1: 20, 2: 10, 3: 20, 4: 10, 5: 0, 6: None, 7: 5, 8: 7, 9: 5, 10: 7, 11: 22, 12: 22}
CALCULATED_1199 = {3, 4, 9, 10, 12}


def item(name, amount, vat="22", *, quantity="1", kind="goods", unit="шт", price=None):
    amount = D(amount)
    return Item(name=name, quantity=D(quantity), price=D(price) if price is not None else amount / D(quantity),
                amount=amount, vat_rate=vat, kind=kind, unit=unit)


def order(*items, number="123", paid="0", without_receipt="0", handed_over=False, payer=PayerKind.PERSON):
    total = sum((i.amount for i in items), D("0.00"))
    return OrderState(number=number, items=tuple(items), total=total, paid=D(paid),
                      paid_without_receipt=D(without_receipt), handed_over=handed_over, payer=payer)


def example_order(**kw):
    """fiscal.md §2.2: order №123, item A 6 000.00, item B 4 000.00, VAT 22 %."""
    return order(item("Товар A", "6000.00"), item("Товар B", "4000.00"), **kw)


def only(drafts):
    assert len(drafts) == 1, drafts
    return drafts[0]


def rows(draft):
    """(name, amount, 1214, 1212, 1199, 1200) per line."""
    return [(line.name, line.amount, int(line.payment_method), int(line.subject), int(line.vat), line.vat_amount)
            for line in draft.lines]


def half_up(value):
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def expected_vat(amount, code):
    rate = PERCENT_OF_1199[int(code)]
    return D("0.00") if not rate else half_up(amount * rate / (100 + rate))


# ---- fiscal.md §2.2, the worked example (R3, R4, R8 [Yes]) ----


def test_r03_worked_example_advance_by_card_is_one_payment_line_at_22_122():
    draft = only(receipts_owed(example_order(), Payment(D("3000.00"), PayMethod.CARD), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE
    assert int(draft.settlement) == 1
    assert rows(draft) == [("Оплата заказа №123", D("3000.00"), 3, 10, 12, D("540.98"))]
    line = draft.lines[0]
    assert (line.quantity, line.price, int(line.measure)) == (D("1"), D("3000.00"), 0)
    assert draft.payments == {ELECTRONIC: D("3000.00")}


def test_r03_worked_example_second_advance_in_cash():
    draft = only(receipts_owed(example_order(paid="3000.00"), Payment(D("2000.00"), PayMethod.CASH), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE
    assert rows(draft) == [("Оплата заказа №123", D("2000.00"), 3, 10, 12, D("360.66"))]
    assert draft.payments == {CASH: D("2000.00")}


def test_r03_worked_example_final_offsets_both_advances_and_takes_the_rest_by_sbp():
    state = example_order(paid="5000.00")
    draft = only(receipts_owed(state, Payment(D("5000.00"), PayMethod.SBP, settle_in_full=True), DAY_2026))

    assert draft.purpose == Purpose.FINAL
    assert int(draft.settlement) == 1
    assert rows(draft) == [
        ("Товар A", D("6000.00"), 4, 1, 11, D("1081.97")),
        ("Товар B", D("4000.00"), 4, 1, 11, D("721.31")),
    ]
    assert draft.payments == {PREPAYMENT: D("5000.00"), ELECTRONIC: D("5000.00")}
    assert draft.total == D("10000.00")


def test_r03_worked_example_final_at_issued_after_full_advances_offsets_everything():
    draft = only(receipts_owed(example_order(paid="10000.00"), HandOver(), DAY_2026))

    assert draft.purpose == Purpose.FINAL
    assert rows(draft) == [
        ("Товар A", D("6000.00"), 4, 1, 11, D("1081.97")),
        ("Товар B", D("4000.00"), 4, 1, 11, D("721.31")),
    ]
    assert draft.payments == {PREPAYMENT: D("10000.00")}


# ---- R3, R4, R7, R9: every payment before hand-over is one «Аванс» ----


@pytest.mark.parametrize("method, form", [
    (PayMethod.CASH, CASH), (PayMethod.CARD, ELECTRONIC), (PayMethod.SBP, ELECTRONIC),
    (PayMethod.ONLINE, ELECTRONIC), (PayMethod.BANK_TRANSFER, ELECTRONIC),
])
def test_r04_each_payment_before_hand_over_owes_exactly_one_advance_paid_in_its_form(method, form):
    draft = only(receipts_owed(example_order(paid="1000.00"), Payment(D("1234.56"), method), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE
    assert draft.payments == {form: D("1234.56")}
    assert [line.amount for line in draft.lines] == [D("1234.56")]


def test_r05_full_payment_is_an_advance_and_issued_then_prints_the_final_with_the_whole_offset():
    state = example_order()
    advance = only(receipts_owed(state, Payment(D("10000.00"), PayMethod.CASH), DAY_2026))
    assert advance.purpose == Purpose.ADVANCE
    assert rows(advance) == [("Оплата заказа №123", D("10000.00"), 3, 10, 12, D("1803.28"))]

    final = only(receipts_owed(example_order(paid="10000.00"), HandOver(), DAY_2026))
    assert final.purpose == Purpose.FINAL
    assert {int(line.payment_method) for line in final.lines} == {4}
    assert final.payments == {PREPAYMENT: D("10000.00")}


def test_r07_partial_payment_is_an_advance_for_the_sum_paid():
    draft = only(receipts_owed(example_order(), Payment(D("0.01"), PayMethod.CASH), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE
    assert rows(draft) == [("Оплата заказа №123", D("0.01"), 3, 10, 12, D("0.00"))]
    assert draft.payments == {CASH: D("0.01")}


@pytest.mark.parametrize("styles", [Settings(), Settings(itemized_final=False)], ids=["itemized", "aggregated"])
def test_r08_yes_settles_in_full_offsetting_what_was_paid_before(styles):
    state = example_order(paid="3000.00")
    draft = only(receipts_owed(state, Payment(D("7000.00"), PayMethod.CASH, settle_in_full=True), DAY_2026, styles))

    assert draft.purpose == Purpose.FINAL
    assert int(draft.settlement) == 1
    assert {int(line.payment_method) for line in draft.lines} == {4}
    assert draft.total == D("10000.00")
    assert draft.payments == {PREPAYMENT: D("3000.00"), CASH: D("7000.00")}


def test_r08_no_pays_the_rest_as_an_advance():
    draft = only(receipts_owed(example_order(paid="3000.00"), Payment(D("7000.00"), PayMethod.CARD), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE
    assert rows(draft) == [("Оплата заказа №123", D("7000.00"), 3, 10, 12, D("1262.30"))]
    assert draft.payments == {ELECTRONIC: D("7000.00")}


def test_r09_payment_below_the_debt_is_an_advance():
    draft = only(receipts_owed(example_order(paid="3000.00"), Payment(D("2500.00"), PayMethod.SBP), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE
    assert rows(draft) == [("Оплата заказа №123", D("2500.00"), 3, 10, 12, D("450.82"))]
    assert draft.payments == {ELECTRONIC: D("2500.00")}


def test_r03_advance_on_mixed_vat_rates_is_one_line_per_rate_in_proportion_to_the_items():
    state = order(item("Чайник", "1000.00", "22"), item("Книга", "500.00", "10"), item("Кружка", "300.00", "22"),
                  item("Доставка", "200.00", "22", kind="service"), number="77")
    # 22 %: 1500.00 of 2000.00; 10 %: 500.00 of 2000.00 → 1000.00 splits 750.00 / 250.00
    draft = only(receipts_owed(state, Payment(D("1000.00"), PayMethod.CARD), DAY_2026))

    assert rows(draft) == [
        ("Оплата заказа №77", D("750.00"), 3, 10, 12, D("135.25")),
        ("Оплата заказа №77", D("250.00"), 3, 10, 4, D("22.73")),
    ]
    assert draft.payments == {ELECTRONIC: D("1000.00")}


def test_r03_advance_shares_per_rate_add_up_to_the_kopeck():
    # weights 1 : 1 : 1 over three rates; 100.00 can't split evenly
    state = order(item("A", "1.00", "22"), item("B", "1.00", "10"), item("C", "1.00", "none"))
    draft = only(receipts_owed(state, Payment(D("100.00"), PayMethod.CASH), DAY_2026))

    assert [(int(line.vat), line.amount, line.vat_amount) for line in draft.lines] == [
        (12, D("33.34"), D("6.01")), (4, D("33.33"), D("3.03")), (6, D("33.33"), D("0.00"))]
    assert draft.total == D("100.00")


# ---- R12: the final receipt is itemized by default, aggregated by choice ----


def test_r12_final_is_itemized_by_default_with_names_quantities_prices_and_measures():
    state = order(item("Сыр", "450.50", "10", quantity="0.5", price="901.00", unit="кг"),
                  item("Доставка (courier)", "300.00", "22", kind="service", unit="усл"),
                  number="9", paid="750.50")
    assert Settings().itemized_final is True

    draft = only(receipts_owed(state, HandOver(), DAY_2026))

    assert rows(draft) == [
        ("Сыр", D("450.50"), 4, 1, 2, D("40.95")),
        ("Доставка (courier)", D("300.00"), 4, 4, 11, D("54.10")),
    ]
    cheese, delivery = draft.lines
    assert (cheese.quantity, cheese.price, int(cheese.measure)) == (D("0.5"), D("901.00"), int(Measure.KILOGRAM))
    assert int(delivery.measure) == 0


def test_r12_aggregated_final_is_one_line_per_vat_rate_and_subject():
    state = order(item("A", "6000.00", "22"), item("B", "1000.00", "10"), item("C", "4000.00", "22"),
                  item("Доставка", "300.00", "22", kind="service"), item("D", "0.50", "10"),
                  number="123", paid="11300.50")

    draft = only(receipts_owed(state, HandOver(), DAY_2026, Settings(itemized_final=False)))

    assert draft.purpose == Purpose.FINAL
    assert sorted(rows(draft), key=lambda r: (r[4], r[3])) == [
        ("Оплата заказа №123", D("1000.50"), 4, 1, 2, D("90.95")),
        ("Оплата заказа №123", D("10000.00"), 4, 1, 11, D("1803.28")),
        ("Оплата заказа №123", D("300.00"), 4, 4, 11, D("54.10")),
    ]
    assert all(line.quantity == 1 and line.price == line.amount for line in draft.lines)
    assert draft.payments == {PREPAYMENT: D("11300.50")}


def test_r12_advance_stays_aggregated_even_when_the_final_is_itemized():
    draft = only(receipts_owed(example_order(), Payment(D("100.00"), PayMethod.CASH), DAY_2026,
                               Settings(itemized_final=True)))
    assert [line.name for line in draft.lines] == ["Оплата заказа №123"]


# ---- B2a: itemized prepayment style ----


def test_b02a_whole_order_paid_at_once_is_full_prepayment_with_the_items():
    state = order(item("Чайник", "1000.00", "22"), item("Книга", "500.00", "10"))
    draft = only(receipts_owed(state, Payment(D("1500.00"), PayMethod.CARD), DAY_2026,
                               Settings(prepayment_style=PrepaymentStyle.ITEMIZED)))

    assert draft.purpose == Purpose.ADVANCE
    assert int(draft.settlement) == 1
    assert rows(draft) == [
        ("Чайник", D("1000.00"), 1, 1, 12, D("180.33")),
        ("Книга", D("500.00"), 1, 1, 4, D("45.45")),
    ]
    assert draft.payments == {ELECTRONIC: D("1500.00")}


@pytest.mark.parametrize("paid, amount", [("0", "100.00"), ("500.00", "1000.00")], ids=["first-part", "rest"])
def test_b02a_partial_prepayment_is_prepayment_with_item_shares_adding_up(paid, amount):
    state = order(item("A", "1000.00", "22"), item("B", "300.00", "10"), item("C", "200.00", "none"), paid=paid)
    draft = only(receipts_owed(state, Payment(D(amount), PayMethod.CASH), DAY_2026,
                               Settings(prepayment_style=PrepaymentStyle.ITEMIZED)))

    assert {int(line.payment_method) for line in draft.lines} == {2}
    assert draft.total == D(amount)
    assert draft.payments == {CASH: D(amount)}
    by_name = {line.name: line for line in draft.lines}
    shares = {name: line.amount for name, line in by_name.items()}
    # proportional to 1000 : 300 : 200, within a kopeck
    for name, weight in {"A": D("1000"), "B": D("300"), "C": D("200")}.items():
        assert abs(shares[name] - D(amount) * weight / D("1500")) < D("0.01")
    assert [int(by_name[n].vat) for n in "ABC"] == [12, 4, 6]
    for line in draft.lines:
        assert line.vat_amount == expected_vat(line.amount, line.vat)


def test_b02a_final_after_itemized_prepayment_offsets_it_the_same_way():
    state = example_order(paid="10000.00")
    draft = only(receipts_owed(state, HandOver(), DAY_2026, Settings(prepayment_style=PrepaymentStyle.ITEMIZED)))
    assert draft.purpose == Purpose.FINAL
    assert draft.payments == {PREPAYMENT: D("10000.00")}


def test_b02_default_prepayment_style_is_the_advance():
    assert Settings().prepayment_style == PrepaymentStyle.ADVANCE


# ---- B3: issued with a debt ----


def test_b03_issued_part_paid_is_partial_settlement_and_credit():
    draft = only(receipts_owed(example_order(paid="3000.00"), HandOver(), DAY_2026))

    assert draft.purpose == Purpose.CREDIT
    assert int(draft.settlement) == 1
    assert rows(draft) == [
        ("Товар A", D("6000.00"), 5, 1, 11, D("1081.97")),
        ("Товар B", D("4000.00"), 5, 1, 11, D("721.31")),
    ]
    assert draft.payments == {PREPAYMENT: D("3000.00"), CREDIT: D("7000.00")}


def test_b03_issued_unpaid_is_credit_transfer_of_the_whole_total():
    draft = only(hand_over_receipts(example_order(), DAY_2026, Settings()))

    assert draft.purpose == Purpose.CREDIT
    assert [int(line.payment_method) for line in draft.lines] == [6, 6]
    assert draft.payments == {CREDIT: D("10000.00")}


def test_b03_credit_receipt_is_itemized_even_when_the_final_is_aggregated():
    draft = only(receipts_owed(example_order(paid="1.00"), HandOver(), DAY_2026, Settings(itemized_final=False)))
    assert [line.name for line in draft.lines] == ["Товар A", "Товар B"]
    assert draft.payments == {PREPAYMENT: D("1.00"), CREDIT: D("9999.00")}


@pytest.mark.parametrize("method, form", [
    (PayMethod.CASH, CASH), (PayMethod.CARD, ELECTRONIC), (PayMethod.SBP, ELECTRONIC), (PayMethod.ONLINE, ELECTRONIC),
])
def test_b03_payment_after_hand_over_is_a_credit_payment_whatever_the_channel(method, form):
    state = example_order(paid="3000.00", handed_over=True)
    draft = only(receipts_owed(state, Payment(D("7000.00"), method), DAY_2026))

    assert draft.purpose == Purpose.CREDIT_PAYMENT
    assert int(draft.settlement) == 1
    assert rows(draft) == [("Оплата долга по заказу №123", D("7000.00"), 7, 10, 11, D("1262.30"))]
    assert draft.payments == {form: D("7000.00")}


def test_b03_settle_in_full_after_hand_over_is_still_a_credit_payment():
    state = example_order(paid="3000.00", handed_over=True)
    draft = only(receipts_owed(state, Payment(D("7000.00"), PayMethod.CASH, settle_in_full=True), DAY_2026))
    assert draft.purpose == Purpose.CREDIT_PAYMENT
    assert [int(line.payment_method) for line in draft.lines] == [7]


@pytest.mark.parametrize("paid, debt", [("0", "10000.00"), ("3000.00", "7000.00"), ("10000.00", "0.00"),
                                        ("10500.00", "0.00")])
def test_b03_debt_is_what_is_left_to_pay_never_below_zero(paid, debt):
    assert example_order(paid=paid).debt == D(debt)


# ---- B4: refunds ----


def test_b04_refund_before_hand_over_mirrors_the_advance():
    state = example_order(paid="5000.00")
    draft = only(receipts_owed(state, Refund(D("2000.00"), PayMethod.CASH), DAY_2026))

    assert draft.purpose == Purpose.ADVANCE_REFUND
    assert int(draft.settlement) == 2
    assert rows(draft) == [("Оплата заказа №123", D("2000.00"), 3, 10, 12, D("360.66"))]
    assert draft.payments == {CASH: D("2000.00")}


def test_b04_refund_of_an_itemized_prepayment_mirrors_the_items():
    state = OrderState("7", (Item("Чайник", D("1"), D("600.00"), D("600.00"), "22"),
                             Item("Чай", D("2"), D("200.00"), D("400.00"), "10")), D("1000.00"), paid=D("500.00"))

    [draft] = receipts_owed(state, Refund(D("500.00"), PayMethod.CARD), date(2026, 3, 1),
                            Settings(prepayment_style=PrepaymentStyle.ITEMIZED))

    assert draft.purpose == Purpose.ADVANCE_REFUND and int(draft.settlement) == 2
    assert [(line.name, line.amount, int(line.payment_method), int(line.vat)) for line in draft.lines] == [
        ("Чайник", D("300.00"), 2, 12), ("Чай", D("200.00"), 2, 4)]
    assert draft.payments == {PaymentForm.ELECTRONIC: D("500.00")}


def test_b13_money_going_back_keeps_the_vat_of_the_day_it_came_in():
    state = OrderState("8", (Item("Чайник", D("1"), D("1000.00"), D("1000.00"), "22"),), D("1000.00"),
                       paid=D("1000.00"), advance_day=date(2025, 12, 20))
    [refund] = receipts_owed(state, Refund(D("1000.00"), PayMethod.CASH), date(2026, 1, 15))
    assert int(refund.lines[0].vat) == 3  # 20/120, as the advance of 2025 was

    on_credit = OrderState("9", state.items, D("1000.00"), handed_over=True, handed_over_day=date(2025, 12, 30))
    [debt] = receipts_owed(on_credit, Payment(D("1000.00"), PayMethod.CASH), date(2026, 1, 15))
    assert int(debt.lines[0].vat) == 1  # 20 %, as the goods handed over on credit in 2025


def test_b04_refund_before_hand_over_on_mixed_rates_splits_like_the_advance():
    state = order(item("A", "1500.00", "22"), item("B", "500.00", "10"), number="5", paid="2000.00")
    advance = only(receipts_owed(order(*state.items, number="5"), Payment(D("1000.00"), PayMethod.CARD), DAY_2026))
    refund = only(receipts_owed(state, Refund(D("1000.00"), PayMethod.CARD), DAY_2026))

    assert rows(refund) == rows(advance)
    assert int(refund.settlement) == 2


def test_b04_refund_after_hand_over_returns_items_at_full_payment_and_the_normal_rate():
    state = order(item("A", "6000.00", "22"), item("B", "4000.00", "10"), paid="10000.00", handed_over=True)
    draft = only(receipts_owed(state, Refund(D("1000.00"), PayMethod.CARD), DAY_2026))

    assert draft.purpose == Purpose.SALE_REFUND
    assert int(draft.settlement) == 2
    assert rows(draft) == [
        ("A", D("600.00"), 4, 1, 11, D("108.20")),
        ("B", D("400.00"), 4, 1, 2, D("36.36")),
    ]
    assert draft.payments == {ELECTRONIC: D("1000.00")}


def test_b04_full_refund_after_hand_over_returns_every_item_in_full():
    state = example_order(paid="10000.00", handed_over=True)
    draft = only(receipts_owed(state, Refund(D("10000.00"), PayMethod.CASH), DAY_2026))

    assert [(line.name, line.amount) for line in draft.lines] == [("Товар A", D("6000.00")), ("Товар B", D("4000.00"))]
    assert draft.payments == {CASH: D("10000.00")}


# ---- B5: no receipt where none is due ----


@pytest.mark.parametrize("method, payer, required", [
    (PayMethod.BANK_TRANSFER, PayerKind.COMPANY, False),
    (PayMethod.BANK_TRANSFER, PayerKind.SOLE_TRADER, False),
    (PayMethod.BANK_TRANSFER, PayerKind.PERSON, True),
    (PayMethod.CARD, PayerKind.COMPANY, True),
    (PayMethod.SBP, PayerKind.SOLE_TRADER, True),
    (PayMethod.CASH, PayerKind.COMPANY, True),
    (PayMethod.ONLINE, PayerKind.COMPANY, True),
    (PayMethod.CASH, PayerKind.PERSON, True),
])
def test_b05_receipt_required_by_method_and_payer(method, payer, required):
    assert receipt_required(method, payer) is required
    state = example_order(payer=payer)
    assert len(receipts_owed(state, Payment(D("100.00"), method), DAY_2026)) == (1 if required else 0)
    paid = example_order(payer=payer, paid="100.00")
    assert len(receipts_owed(paid, Refund(D("100.00"), method), DAY_2026)) == (1 if required else 0)


def test_b05_company_bank_transfer_after_hand_over_owes_no_credit_payment_receipt():
    state = example_order(payer=PayerKind.COMPANY, handed_over=True)
    assert receipts_owed(state, Payment(D("10000.00"), PayMethod.BANK_TRANSFER), DAY_2026) == []


@pytest.mark.parametrize("without_receipt", ["10000.00", "10000.01"])
def test_b05_hand_over_of_an_order_paid_wholly_without_receipt_owes_none(without_receipt):
    state = example_order(payer=PayerKind.COMPANY, paid=without_receipt, without_receipt=without_receipt)
    assert receipts_owed(state, HandOver(), DAY_2026) == []


def test_b05_hand_over_of_an_order_paid_partly_without_receipt_still_owes_one():
    state = example_order(payer=PayerKind.COMPANY, paid="10000.00", without_receipt="9999.99")
    assert len(receipts_owed(state, HandOver(), DAY_2026)) == 1


# ---- B13: VAT by the settlement date ----


@pytest.mark.parametrize("rate, day, calculated, code", [
    ("22", DAY_2025, True, 3), ("22", DAY_2025, False, 1),
    ("20", DAY_2025, True, 3), ("20", DAY_2025, False, 1),
    ("22", date(2025, 12, 31), True, 3), ("22", date(2026, 1, 1), True, 12),
    ("22", DAY_2026, True, 12), ("22", DAY_2026, False, 11),
    ("20", DAY_2026, True, 12), ("20", DAY_2026, False, 11),  # "20" is the general rate: 22 in 2026
    ("10", DAY_2025, True, 4), ("10", DAY_2025, False, 2),
    ("10", DAY_2026, True, 4), ("10", DAY_2026, False, 2),
    ("5", DAY_2026, True, 9), ("5", DAY_2026, False, 7),
    ("7", DAY_2026, True, 10), ("7", DAY_2026, False, 8),
    ("0", DAY_2026, True, 5), ("0", DAY_2026, False, 5),
    ("none", DAY_2025, True, 6), ("none", DAY_2026, False, 6),
])
def test_b13_vat_code_by_item_rate_date_and_kind_of_settlement(rate, day, calculated, code):
    assert int(vat_code(rate, day, calculated=calculated)) == code


@pytest.mark.parametrize("amount, code, vat", [
    ("3000.00", 12, "540.98"), ("2000.00", 12, "360.66"), ("6000.00", 11, "1081.97"), ("4000.00", 11, "721.31"),
    ("120.00", 3, "20.00"), ("120.00", 1, "20.00"), ("110.00", 4, "10.00"), ("110.00", 2, "10.00"),
    ("0.06", 12, "0.01"),  # 0.0108… → 0.01
    ("0.05", 1, "0.01"),  # 0.008333… → 0.01
    ("0.03", 1, "0.01"),  # 0.005 exactly → half up
    ("0.02", 1, "0.00"),
    ("1000.00", 5, "0.00"), ("1000.00", 6, "0.00"),
])
def test_b13_vat_amount_is_extracted_half_up(amount, code, vat):
    assert vat_amount(D(amount), Vat(code)) == D(vat)


@pytest.mark.parametrize("day, advance_code, final_code", [(DAY_2025, 3, 1), (DAY_2026, 12, 11)])
def test_b13_receipts_take_the_general_rate_in_force_on_their_day(day, advance_code, final_code):
    state = order(item("A", "1200.00", "22"), item("B", "1100.00", "10"), item("C", "500.00", "none"))
    advance = only(receipts_owed(state, Payment(D("2800.00"), PayMethod.CASH), day))
    final = only(receipts_owed(order(*state.items, paid="2800.00"), HandOver(), day))

    assert [(int(line.vat), line.amount) for line in advance.lines] == [
        (advance_code, D("1200.00")), (4, D("1100.00")), (6, D("500.00"))]
    assert [int(line.vat) for line in final.lines] == [final_code, 2, 6]
    general = 20 if day.year == 2025 else 22
    assert advance.lines[0].vat_amount == half_up(D("1200.00") * general / (100 + general))
    assert final.lines[0].vat_amount == half_up(D("1200.00") * general / (100 + general))
    assert advance.lines[1].vat_amount == final.lines[1].vat_amount == D("100.00")
    assert advance.lines[2].vat_amount == final.lines[2].vat_amount == D("0.00")


def test_b13_advance_in_2025_and_final_in_2026_change_rate():
    state = example_order()
    advance = only(receipts_owed(state, Payment(D("10000.00"), PayMethod.CARD), date(2025, 12, 30)))
    final = only(receipts_owed(example_order(paid="10000.00"), HandOver(), date(2026, 1, 12)))
    assert rows(advance) == [("Оплата заказа №123", D("10000.00"), 3, 10, 3, D("1666.67"))]
    assert [int(line.vat) for line in final.lines] == [11, 11]
    assert final.payments == {PREPAYMENT: D("10000.00")}


# ---- R1: a cash-desk sale without an order ----


@pytest.mark.parametrize("method, form", [
    (PayMethod.CASH, CASH), (PayMethod.CARD, ELECTRONIC), (PayMethod.SBP, ELECTRONIC),
])
def test_r01_quick_sale_is_one_full_payment_receipt_per_item(method, form):
    state = order(item("Батарейка", "150.00", "22", quantity="3", price="50.00"), item("Пакет", "5.00", "none"),
                  number="Q-1", paid="155.00")
    draft = only(receipts_owed(state, QuickSale(method), DAY_2026))

    assert draft.purpose == Purpose.SALE
    assert int(draft.settlement) == 1
    assert rows(draft) == [
        ("Батарейка", D("150.00"), 4, 1, 11, D("27.05")),
        ("Пакет", D("5.00"), 4, 1, 6, D("0.00")),
    ]
    assert (draft.lines[0].quantity, draft.lines[0].price) == (D("3"), D("50.00"))
    assert draft.payments == {form: D("155.00")}


# ---- B1: split() ----


@pytest.mark.parametrize("amount, weights, shares", [
    ("100.00", ["1", "1", "1"], ["33.34", "33.33", "33.33"]),
    ("10.00", ["6000", "4000"], ["6.00", "4.00"]),
    ("0.01", ["1", "1"], ["0.01", "0.00"]),
    ("0.02", ["1", "4"], ["0.00", "0.02"]),  # 0.4 / 1.6 kopecks: the larger remainder gets the kopeck
    ("1.00", ["1", "2", "3", "4"], ["0.10", "0.20", "0.30", "0.40"]),
    ("7.77", ["5"], ["7.77"]),
    ("5.00", ["0", "0"], ["5.00", "0.00"]),
    ("5.00", ["0", "3"], ["0.00", "5.00"]),
    ("0.00", ["1", "2"], ["0.00", "0.00"]),
])
def test_b01_split_is_proportional_and_adds_up_to_the_kopeck(amount, weights, shares):
    result = split(D(amount), [D(w) for w in weights])
    assert result == [D(s) for s in shares]
    assert sum(result, D("0")) == D(amount)


def test_b01_split_of_nothing_is_nothing():
    assert split(D("10.00"), []) == []


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**8), min_size=1, max_size=8))
def test_b01_split_shares_always_add_up_and_stay_within_a_kopeck_of_the_exact_share(kopecks, weights):
    amount = D(kopecks) / 100
    weights = [D(w) / 100 for w in weights]
    shares = split(amount, weights)

    assert len(shares) == len(weights)
    assert sum(shares, D("0")) == amount
    assert all(s >= 0 and s == s.quantize(D("0.01")) for s in shares)
    total_weight = sum(weights, D("0"))
    if total_weight:
        for share, weight in zip(shares, weights):
            assert abs(share - amount * weight / total_weight) < D("0.01")
            if weight == 0:
                assert share == 0


# ---- B1/B2 properties: any order, any history of payments and refunds ----

METHODS = list(PayMethod)
SOME_DAYS = [DAY_2025, DAY_2026]


@st.composite
def items_strategy(draw):
    n = draw(st.integers(1, 6))
    result = []
    for i in range(n):
        price = D(draw(st.integers(1, 5_000_000))) / 100
        quantity = D(draw(st.sampled_from([1, 1, 2, 3, 10]))) if draw(st.booleans()) else \
            D(draw(st.integers(1, 5000))) / 1000
        amount = half_up(price * quantity)
        if amount <= 0:
            amount, quantity = price, D(1)
        result.append(Item(name=f"Item {i}", quantity=quantity, price=price, amount=amount,
                           vat_rate=draw(st.sampled_from(["none", "0", "10", "20", "22"])),
                           kind=draw(st.sampled_from(["goods", "goods", "service"]))))
    return tuple(result)


def kopecks_up_to(limit):
    """Some kopecks of a sum, the whole sum often: paying off the debt is the usual case."""
    whole = int(limit * 100)
    return st.one_of(st.just(whole), st.integers(1, whole))


def check_draft(draft, day):
    """What every draft must satisfy, whatever it is for (B1, B2)."""
    assert sum(draft.payments.values(), D("0")) == draft.total
    assert all(s > 0 for s in draft.payments.values())
    assert draft.lines
    for line in draft.lines:
        assert line.amount > 0, line
        assert line.amount == line.amount.quantize(D("0.01"))
        assert line.vat_amount == expected_vat(line.amount, line.vat), line
        rate = PERCENT_OF_1199[int(line.vat)]
        if rate:  # money before hand-over at the calculated rate, everything else at the normal one
            assert (int(line.vat) in CALCULATED_1199) == (int(line.payment_method) in (1, 2, 3)), line
        if rate not in (None, 0, 10):
            assert rate == (20 if day.year == 2025 else 22)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=items_strategy(), payer=st.sampled_from(list(PayerKind)), day=st.sampled_from(SOME_DAYS),
       fiscal_settings=st.builds(Settings, itemized_final=st.booleans(),
                                 prepayment_style=st.sampled_from(list(PrepaymentStyle))),
       data=st.data())
def test_b02_any_history_of_payments_and_refunds_then_hand_over_adds_up(items, payer, day, fiscal_settings, data):
    total = sum((i.amount for i in items), D("0.00"))
    paid = exempt = D("0.00")  # net money in; of which without receipt (B5)
    advanced = advance_refunded = D("0.00")  # receipted sums before hand-over

    def state(handed_over=False):
        return OrderState(number="42", items=items, total=total, paid=paid, paid_without_receipt=exempt,
                          handed_over=handed_over, payer=payer)

    # before hand-over: partial payments (each ≤ the debt) and refunds (≤ what was paid, back the way it came)
    settled, settled_amount = None, D("0.00")
    for _ in range(data.draw(st.integers(0, 6), label="steps")):
        debt = total - paid
        receipted = paid - exempt
        if debt > 0 and data.draw(st.booleans(), label="pay?"):
            amount = D(data.draw(kopecks_up_to(debt), label="amount")) / 100
            method = data.draw(st.sampled_from(METHODS), label="method")
            settle = amount == debt and paid > 0 and data.draw(st.booleans(), label="settle")
            drafts = receipts_owed(state(), Payment(amount, method, settle_in_full=settle), day, fiscal_settings)
            needed = receipt_required(method, payer)
            assert len(drafts) == (1 if needed else 0)
            for draft in drafts:
                check_draft(draft, day)
                assert int(draft.settlement) == 1
                assert draft.payments.get(CASH, 0) + draft.payments.get(ELECTRONIC, 0) == amount
            if settle and drafts:
                # R8 [Yes]: the final receipt, the order is handed over with it
                settled, settled_amount = drafts[0], amount
                assert settled.purpose == Purpose.FINAL
                assert settled.payments.get(PREPAYMENT, D("0")) == paid
                assert settled.total == total
            elif drafts:
                assert drafts[0].purpose == Purpose.ADVANCE
                advanced += amount
            paid += amount
            if not needed:
                exempt += amount
            if settle and drafts:
                break
        elif paid > 0 and data.draw(st.booleans(), label="refund?"):
            if payer != PayerKind.PERSON and exempt > 0 and (receipted <= 0 or data.draw(st.booleans())):
                amount, method = D(data.draw(st.integers(1, int(exempt * 100)))) / 100, PayMethod.BANK_TRANSFER
            elif receipted > 0:
                amount = D(data.draw(kopecks_up_to(receipted), label="refund")) / 100
                method = data.draw(st.sampled_from([PayMethod.CASH, PayMethod.CARD, PayMethod.SBP]))
            else:
                continue
            drafts = receipts_owed(state(), Refund(amount, method), day, fiscal_settings)
            needed = receipt_required(method, payer)
            assert len(drafts) == (1 if needed else 0)
            for draft in drafts:
                check_draft(draft, day)
                assert draft.purpose == Purpose.ADVANCE_REFUND
                assert int(draft.settlement) == 2
                # the refund mirrors the prepayment as it was printed (B2a's style)
                if fiscal_settings.prepayment_style == PrepaymentStyle.ITEMIZED:
                    assert {int(line.payment_method) for line in draft.lines} <= {1, 2}
                else:
                    assert {int(line.payment_method) for line in draft.lines} == {3}
                    assert {int(line.subject) for line in draft.lines} == {10}
                advance_refunded += amount
            paid -= amount
            if not needed:
                exempt -= amount

    # every receipted kopeck taken before hand-over is in an advance receipt, net of the refunds
    assert advanced - advance_refunded == paid - exempt - settled_amount

    if settled is None:
        drafts = receipts_owed(state(), HandOver(), day, fiscal_settings)
        if exempt >= total:
            assert drafts == []
            return
        hand_over = only(drafts)
        check_draft(hand_over, day)
        offset = min(paid, total)
        assert hand_over.payments.get(PREPAYMENT, D("0")) == offset
        assert sum(hand_over.payments.get(form, D("0")) for form in (PREPAYMENT, CREDIT, CASH, ELECTRONIC)) == total
        assert hand_over.total == total
        methods_1214 = {int(line.payment_method) for line in hand_over.lines}
        if paid >= total:
            assert hand_over.purpose == Purpose.FINAL and methods_1214 == {4}
        elif paid > 0:
            assert hand_over.purpose == Purpose.CREDIT and methods_1214 == {5}
            assert hand_over.payments[CREDIT] == total - paid
        else:
            assert hand_over.purpose == Purpose.CREDIT and methods_1214 == {6}
            assert hand_over.payments == {CREDIT: total}
    else:
        check_draft(settled, day)

    # after hand-over the debt is paid off in credit payments (B3)
    while paid < total and data.draw(st.booleans(), label="pay debt?"):
        amount = D(data.draw(kopecks_up_to(total - paid), label="debt amount")) / 100
        method = data.draw(st.sampled_from(METHODS), label="debt method")
        drafts = receipts_owed(state(handed_over=True), Payment(amount, method), day, fiscal_settings)
        assert len(drafts) == (1 if receipt_required(method, payer) else 0)
        for draft in drafts:
            check_draft(draft, day)
            assert draft.purpose == Purpose.CREDIT_PAYMENT
            assert {(int(line.payment_method), int(line.subject)) for line in draft.lines} == {(7, 10)}
            assert draft.total == amount
        paid += amount
