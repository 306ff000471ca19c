"""B10's pure rules: how 1C writes numbers, dates, flags and file names, and what its documents
mean for our orders (commerceml.md §1.6, §1.7, §3.2, §8)."""

from datetime import datetime
from decimal import Decimal

import pytest

from orderdesk.exchange import rules
from orderdesk.exchange.rules import OneCDocument, OrderNow


@pytest.mark.parametrize("text, value", [
    ("1600.00", Decimal("1600.00")), ("1 600", Decimal("1600")), ("23\u00a0000,50", Decimal("23000.50")),
    ("1\u202f600", Decimal("1600")), ("390", Decimal("390")), ("", None), ("abc", None), (None, None), ("NaN", None),
])
def test_b10_numbers_as_1c_writes_them(text, value):
    assert rules.parse_number(text) == value


@pytest.mark.parametrize("text, value", [
    ("2026-03-15T10:20:00", datetime(2026, 3, 15, 10, 20)),
    ("2026-03-15 10:20:00", datetime(2026, 3, 15, 10, 20)),
    ("15.03.2026 10:20:00", datetime(2026, 3, 15, 10, 20)),
    ("15.03.2026", datetime(2026, 3, 15)),
    ("2026-03-15", datetime(2026, 3, 15)),
    ("2026-03-15T10:20:00.123", datetime(2026, 3, 15, 10, 20)),
    ("T", None), ("", None), ("0001-01-01T00:00:00", None), ("01.01.0001 0:00:00", None), ("вчера", None),
])
def test_b10_dates_as_1c_writes_them_and_its_empty_date(text, value):
    assert rules.parse_datetime(text) == value


@pytest.mark.parametrize("text, value", [("true", True), ("Да", True), ("false", False), ("нет", False),
                                         (" TRUE ", True), ("", None), ("может быть", None)])
def test_b10_flags(text, value):
    assert rules.parse_flag(text) == value


@pytest.mark.parametrize("raw, name", [
    ("orders.xml", "orders.xml"), ("C:\\v8_8789_c.xml", "v8_8789_c.xml"), ("/tmp/a.xml", "a.xml"),
    ("../../etc/passwd", "passwd"), ("upload/1c/webdata/documents___1.xml", "documents___1.xml"),
    ("..", None), ("", None), ("a\x00.xml", None), ("a:b", None), ("x" * 201, None),
])
def test_b10_filenames_are_cut_to_a_plain_name_or_refused(raw, name):
    assert rules.clean_filename(raw) == name


def test_b10_requisite_names_compare_folded():
    assert rules.requisite_key("  Дата  оплаты по 1С ") == rules.requisite_key("дата оплаты по 1с")


def test_b10_requisites_win_over_elements_of_the_same_meaning():
    facts = rules.read_facts({"номер1с": "A-1", "пометкаудаления": "true"},
                             {"номер по 1с": "B-2", "проведен": "maybe", "пометкаудаления": "false"})

    assert facts == {"one_c_number": "B-2", "deletion_mark": False}


def test_b10_a_fact_left_out_is_absent_and_an_empty_one_clears():
    facts = rules.read_facts({}, {"дата оплаты по 1с": "T", "номер оплаты по 1с": ""})

    assert facts == {"paid_at": None, "payment_number": ""}


@pytest.mark.parametrize("version, declared", [("2.08", "2.08"), ("2.05", "2.05"), ("2.10", "2.08"), ("2.1", "2.08"),
                                               ("3.1", "2.08"), ("", "2.05"), ("x", "2.08")])
def test_b10_the_schema_version_declared_and_2_05_when_1c_names_none(version, declared):
    assert rules.schema_version(version) == declared


@pytest.mark.parametrize("version, base_unit", [("2.05", True), ("2.04", True), ("2.08", False), ("2.10", False),
                                                ("2.1", False), ("3.1", False)])
def test_b10_versions_compare_as_numbers(version, base_unit):
    assert rules.uses_base_unit(version) is base_unit


def doc(total=None, **facts) -> OneCDocument:
    return OneCDocument("1", total=total, facts=facts)


def order(status="pending_approval", mark=False, total="900.00", paid="not_paid") -> OrderNow:
    return OrderNow(status, mark, Decimal(total), paid)


def test_b10_posted_in_1c_agrees_a_pending_order():
    plan = rules.plan(order(), doc(posted=True, total=Decimal("900")))

    assert (plan.statuses, plan.deletion_mark, plan.notes) == (["agreed"], None, [])


def test_b10_posted_and_shipped_moves_a_pending_order_through_agreed_to_shipped():
    plan = rules.plan(order(), doc(posted=True, shipped_at=datetime(2026, 3, 15)))

    assert plan.statuses == ["agreed", "shipped"]


def test_b10_shipped_in_1c_does_not_step_an_issued_order_back():
    assert rules.plan(order("issued"), doc(shipped_at=datetime(2026, 3, 15))).statuses == []


def test_b10_cancellation_in_1c_that_the_lifecycle_forbids_is_noted():
    plan = rules.plan(order("issued"), doc(cancelled=True))

    assert plan.statuses == []
    assert plan.notes == ["status_not_allowed:cancelled:issued"]


def test_b10_a_payment_in_1c_is_a_note_when_orderdesk_has_not_been_paid():
    assert rules.plan(order(), doc(paid_at=datetime(2026, 3, 15))).notes == ["paid_in_1c_only"]
    assert rules.plan(order(paid="paid"), doc(paid_at=datetime(2026, 3, 15))).notes == []


def test_b10_a_different_total_is_noted_except_on_a_cancelled_or_deleted_document():
    assert rules.plan(order(), doc(total=Decimal("0"))).notes == ["total_differs"]
    assert rules.plan(order(), doc(total=Decimal("0"), cancelled=True, deletion_mark=True)).notes == []


def test_b10_the_deletion_mark_follows_1c_both_ways_and_an_absent_one_changes_nothing():
    assert rules.plan(order(), doc(deletion_mark=True)).deletion_mark is True
    assert rules.plan(order(mark=True), doc(deletion_mark=False)).deletion_mark is False
    assert rules.plan(order(mark=True), doc()).deletion_mark is None
