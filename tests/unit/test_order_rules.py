"""The pure order rules (rules.py): lifecycle (S3, S5, S9), frozen items, exact money (B1),
intake fingerprint (S1) and the customer data checks. No database here."""

import copy
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk.orders import rules
from orderdesk.orders.rules import Line, StatusCode, changes, inn_valid, intake_fingerprint, line_amount, line_problem, normalize_phone, order_totals
from tests.conftest import order_body

ALL_STATUSES = [code.value for code in StatusCode]
D = Decimal


# ---- S3, S5, S9: the lifecycle ----


@pytest.mark.parametrize(
    "path",
    [
        ["pending_approval", "agreed", "shipped", "issued", "closed"],
        ["pending_approval", "agreed", "shipped", "closed"],
        ["pending_approval", "agreed", "issued", "closed"],
    ],
    ids=["shipped-then-issued", "shipped", "issued-at-the-desk"],
)
def test_s03_lifecycle_is_allowed_step_by_step(path):
    for current, target in zip(path, path[1:]):
        assert rules.transition_allowed(current, target), f"{current} → {target}"


def test_s05_pending_approval_may_be_agreed():
    assert rules.transition_allowed("pending_approval", "agreed")
    assert "agreed" in rules.allowed_targets("pending_approval")


@pytest.mark.parametrize("current", ["shipped", "issued"])
def test_s09_shipped_or_issued_order_may_be_closed(current):
    assert rules.transition_allowed(current, "closed")


@pytest.mark.parametrize("target", ALL_STATUSES)
def test_s09_closed_order_goes_nowhere(target):
    assert not rules.transition_allowed("closed", target)


def test_s09_closed_order_offers_no_targets():
    assert rules.allowed_targets("closed") == []


@pytest.mark.parametrize(
    "current, target",
    [
        ("pending_approval", "issued"),  # goods cannot leave before the order is agreed
        ("pending_approval", "shipped"),
        ("pending_approval", "closed"),
        ("agreed", "closed"),  # nothing handed over yet
        ("issued", "agreed"),  # the goods are with the customer
        ("issued", "shipped"),
        ("issued", "pending_approval"),
        ("issued", "cancelled"),
    ],
)
def test_s03_moves_outside_the_lifecycle_are_forbidden(current, target):
    assert not rules.transition_allowed(current, target)
    assert target not in rules.allowed_targets(current)


@pytest.mark.parametrize("current", ALL_STATUSES)
def test_s03_setting_the_same_status_is_not_a_transition(current):
    assert not rules.transition_allowed(current, current)


@pytest.mark.parametrize(
    "current, target",
    [("paid", "closed"), ("agreed", "paid"), ("", "agreed"), ("agreed", ""), ("Agreed", "shipped"), ("agreed", "SHIPPED")],
)
def test_s03_unknown_status_codes_are_refused(current, target):
    assert not rules.transition_allowed(current, target)


def test_s03_unknown_current_status_offers_no_targets():
    assert rules.allowed_targets("paid") == []
    assert rules.allowed_targets("") == []


def test_s03_allowed_targets_follow_the_lifecycle_order():
    assert rules.allowed_targets("pending_approval") == ["agreed", "cancelled"]
    assert rules.allowed_targets("agreed") == ["pending_approval", "shipped", "issued", "cancelled"]
    assert rules.allowed_targets("shipped") == ["agreed", "issued", "closed", "cancelled"]
    assert rules.allowed_targets("issued") == ["closed"]


@pytest.mark.parametrize("current", ALL_STATUSES)
def test_s03_allowed_targets_agree_with_transition_allowed(current):
    targets = rules.allowed_targets(current)
    assert targets == [t for t in ALL_STATUSES if rules.transition_allowed(current, t)]


@pytest.mark.parametrize("status, editable", [
    ("pending_approval", True),
    ("agreed", True),
    ("shipped", False),
    ("issued", False),
    ("closed", False),
    ("cancelled", False),
])
def test_s04_items_can_be_changed_only_before_the_goods_leave(status, editable):
    assert rules.items_editable(status) is editable


# ---- B1: money is exact ----


@pytest.mark.parametrize(
    "quantity, price, discount, amount",
    [
        ("3", "33.33", "0", "99.99"),
        ("0.333", "10.01", "0", "3.33"),  # 3.33333 → 3.33
        ("0.5", "0.01", "0", "0.01"),  # 0.005 → half up, not to even
        ("2.5", "0.01", "0", "0.03"),  # 0.025 → 0.03 (banker's rounding would give 0.02)
        ("0.125", "1.00", "0", "0.13"),
        ("1.005", "1.00", "0", "1.01"),  # float 1.005 is 1.00499…, Decimal is not
        ("3", "33.33", "0.99", "99.00"),
        ("2", "150.50", "1.00", "300.00"),
        ("1", "0", "0", "0.00"),
        ("1000000", "999999.99", "0", "999999990000.00"),
    ],
)
def test_b01_line_amount_is_quantity_times_price_rounded_half_up_less_discount(quantity, price, discount, amount):
    result = line_amount(Line(D(quantity), D(price), D(discount)))
    assert result == D(amount)
    assert result.as_tuple().exponent == -2


def test_b01_discount_is_taken_after_rounding_the_line():
    # 0.5 × 0.03 = 0.015 → 0.02, less 0.01 → 0.01 (not round(0.005) = 0.01 by accident: check 0.025 too)
    assert line_amount(Line(D("0.5"), D("0.03"), D("0.01"))) == D("0.01")
    assert line_amount(Line(D("0.5"), D("0.05"), D("0.02"))) == D("0.01")  # 0.025 → 0.03 − 0.02


def test_b01_ten_lines_of_ten_kopecks_make_exactly_one_rouble():
    totals = order_totals([Line(D("1"), D("0.10"))] * 10)
    assert totals.items_total == D("1.00")
    assert totals.total == D("1.00")


def test_b01_order_totals_add_delivery_to_the_items():
    totals = order_totals(
        [Line(D("2"), D("150.50"), D("1.00")), Line(D("0.333"), D("10.01")), Line(D("1.5"), D("0.01"))],
        delivery_price=D("300"),
    )
    assert totals.items_total == D("303.35")  # 300.00 + 3.33 + 0.02
    assert totals.delivery_price == D("300.00")
    assert totals.total == D("603.35")
    for value in (totals.items_total, totals.delivery_price, totals.total):
        assert value.as_tuple().exponent == -2


def test_b01_order_without_lines_totals_zero_kopecks():
    totals = order_totals([])
    assert totals.items_total == D("0") and totals.items_total.as_tuple().exponent == -2
    assert totals.total.as_tuple().exponent == -2


def test_b01_order_totals_accept_a_generator_of_lines():
    totals = order_totals(Line(D(n), D("1.00")) for n in range(1, 4))
    assert totals.items_total == D("6.00")


@pytest.mark.parametrize(
    "quantity, price, discount, problem",
    [
        ("2", "10.00", "20.01", "discount_exceeds_amount"),
        ("2", "10.00", "20.00", None),  # a line may be given away
        ("0.5", "0.01", "0.01", None),  # 0.005 rounds up to 0.01, so a 0.01 discount fits
        ("0.5", "0.01", "0.02", "discount_exceeds_amount"),
        ("1", "0", "0.01", "discount_exceeds_amount"),
        ("1", "0", "0", None),
    ],
)
def test_b01_discount_may_not_exceed_the_line_amount(quantity, price, discount, problem):
    assert line_problem(Line(D(quantity), D(price), D(discount))) == problem


quantities = st.integers(min_value=1, max_value=1_000_000_000).map(lambda n: D(n).scaleb(-3))  # 0.001 … 1 000 000
prices = st.integers(min_value=0, max_value=10_000_000_000).map(lambda n: D(n).scaleb(-2))  # 0.00 … 100 000 000.00


@st.composite
def lines(draw):
    quantity, price = draw(quantities), draw(prices)
    gross_kopecks = _kopecks_half_up(quantity, price)
    discount = D(draw(st.integers(min_value=0, max_value=gross_kopecks))).scaleb(-2)
    return Line(quantity, price, discount)


def _kopecks_half_up(quantity: Decimal, price: Decimal) -> int:
    """Integer arithmetic only: thousandths × kopecks = 1e-5 roubles; half up to whole kopecks."""
    thousandths = int(quantity.scaleb(3))
    kopecks = int(price.scaleb(2))
    return (thousandths * kopecks + 500) // 1000


@settings(max_examples=200, deadline=None)
@given(line=lines())
def test_b01_line_amount_equals_integer_kopeck_arithmetic(line):
    amount = line_amount(line)
    assert isinstance(amount, Decimal)
    assert amount.as_tuple().exponent == -2
    assert int(amount.scaleb(2)) == _kopecks_half_up(line.quantity, line.price) - int(line.discount.scaleb(2))
    assert amount >= 0
    assert line_problem(line) is None


@settings(max_examples=200, deadline=None)
@given(
    order_lines=st.lists(lines(), max_size=30),
    delivery=st.integers(min_value=0, max_value=100_000_000).map(lambda n: D(n).scaleb(-2)),
)
def test_b01_totals_are_exact_kopecks_and_add_up(order_lines, delivery):
    totals = order_totals(order_lines, delivery_price=delivery)
    for value in (totals.items_total, totals.delivery_price, totals.total):
        assert type(value) is Decimal  # never float
        assert value.as_tuple().exponent == -2
    assert totals.total == totals.items_total + totals.delivery_price
    assert totals.items_total == sum((line_amount(line) for line in order_lines), D("0"))
    assert int(totals.total.scaleb(2)) == sum(
        _kopecks_half_up(line.quantity, line.price) - int(line.discount.scaleb(2)) for line in order_lines
    ) + int(delivery.scaleb(2))


# ---- S1: the same order sent twice is recognised ----


def test_s01_fingerprint_ignores_key_order():
    body = order_body()
    reordered = {key: body[key] for key in reversed(list(body))}
    reordered["customer"] = {key: body["customer"][key] for key in reversed(list(body["customer"]))}
    reordered["items"] = [{key: item[key] for key in reversed(list(item))} for item in body["items"]]
    assert list(reordered) != list(body)
    assert intake_fingerprint(reordered) == intake_fingerprint(body)


def test_s01_fingerprint_is_stable_across_copies_and_calls():
    body = order_body()
    assert intake_fingerprint(copy.deepcopy(body)) == intake_fingerprint(body)
    assert len(intake_fingerprint(body)) == 64  # sha256 hex


def _leaf_paths(value, path=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaf_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaf_paths(child, (*path, index))
    else:
        yield path


def _changed(body, path):
    changed = copy.deepcopy(body)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = f"{target[path[-1]]}x"
    return changed


@pytest.mark.parametrize("path", list(_leaf_paths(order_body())), ids=lambda p: ".".join(map(str, p)))
def test_s01_fingerprint_differs_when_any_value_differs(path):
    body = order_body()
    assert intake_fingerprint(_changed(body, path)) != intake_fingerprint(body)


def test_s01_fingerprint_differs_when_a_field_is_added_or_an_item_removed():
    body = order_body()
    assert intake_fingerprint({**body, "extra": None}) != intake_fingerprint(body)
    assert intake_fingerprint({**body, "items": body["items"][:1]}) != intake_fingerprint(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_s01_fingerprint_of_any_body_ignores_key_order(body):
    reordered = dict(reversed(list(body.items())))
    assert intake_fingerprint(reordered) == intake_fingerprint(body)


# ---- customer data ----


@pytest.mark.parametrize(
    "raw",
    [
        "8 912 345-67-89",
        "+7 (912) 345 67 89",
        "9123456789",
        "89123456789",
        "79123456789",
        "+79123456789",
        "8(912)345-67-89",
        "  +7 912 345.67.89  ",
        "7-912-345-67-89",
    ],
)
def test_s01_russian_phone_written_any_usual_way_becomes_plus_seven(raw):
    assert normalize_phone(raw) == "+79123456789"


def test_s01_landline_with_trunk_prefix_is_normalized():
    assert normalize_phone("8 (495) 123-45-67") == "+74951234567"
    assert normalize_phone("8 800 555-35-35") == "+78005553535"


def test_s01_foreign_phone_is_kept_in_e164():
    assert normalize_phone("+49 30 1234567") == "+49301234567"
    assert normalize_phone("+375 (29) 123-45-67") == "+375291234567"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "+",
        "abc",
        "12345",
        "912345678",  # nine digits
        "891234567890",  # twelve digits with a trunk 8
        "59123456789",  # eleven digits, not 7/8 in front
        "++79123456789",
        "+7 912 abc 67 89",
        "8 912 345 67 89 доб. 12",
        "+7 912 345-67-8",  # a digit short: +7 numbers have ten digits after the code
        "+7 912 345-67-890",  # a digit too many
        "+1234567890123456",  # longer than E.164 allows
        "８９１２３４５６７８９",  # full-width digits are not a phone to dial
        "+７９１２３４５６７８９",
        "+7 912 345/67/89",
    ],
)
def test_s01_junk_is_not_a_phone(raw):
    assert normalize_phone(raw) is None


@pytest.mark.parametrize(
    "inn",
    [
        "7707083893",  # Sberbank
        "7736207543",  # Yandex
        "500100732259",  # a person
        "773173084809",
    ],
)
def test_s01_valid_inn_passes(inn):
    assert inn_valid(inn)


def _with_last_digit_changed(inn: str, position: int) -> list[str]:
    return [inn[:position] + str(d) + inn[position + 1 :] for d in range(10) if str(d) != inn[position]]


@pytest.mark.parametrize(
    "inn",
    [
        *_with_last_digit_changed("7707083893", 9),
        *_with_last_digit_changed("500100732259", 10),
        *_with_last_digit_changed("500100732259", 11),
    ],
)
def test_s01_inn_with_wrong_check_digit_is_refused(inn):
    assert not inn_valid(inn)


@pytest.mark.parametrize(
    "inn",
    ["", "770708389", "77070838931", "7707083893 ", "770708389O", "5001007322591", "-707083893", "７７０７０８３８９３", "²²²²²²²²²²"],
)
def test_s01_inn_of_wrong_shape_is_refused(inn):
    assert inn_valid(inn) is False


def test_s01_inn_check_swaps_are_caught():
    # swapping two digits changes the weighted sum; the check digit must notice
    assert not inn_valid("7070783893")


# ---- B7: what changed ----


def test_b07_changes_lists_only_differing_fields_as_before_after():
    before = {"status": "agreed", "total": D("100.00"), "comment": "x"}
    after = {"status": "shipped", "total": D("100.00"), "comment": "x"}
    assert changes(before, after) == {"status": ["agreed", "shipped"]}


def test_b07_changes_show_added_and_removed_fields_as_none():
    assert changes({"a": 1}, {"b": 2}) == {"a": [1, None], "b": [None, 2]}


def test_b07_no_changes_is_empty_and_keys_are_sorted():
    assert changes({"x": 1, "y": [1, 2]}, {"y": [1, 2], "x": 1}) == {}
    assert list(changes({"b": 1, "a": 1, "c": 1}, {"b": 2, "a": 2, "c": 2})) == ["a", "b", "c"]


def test_b07_changes_treat_equal_decimals_as_unchanged():
    assert changes({"total": D("100.0")}, {"total": D("100.00")}) == {}
