"""B1: money() turns sums into Decimal kopecks, half up as cash registers round, and refuses floats."""

from decimal import Decimal

import pytest

from orderdesk.core.money import ZERO, money


@pytest.mark.parametrize("value", [0.1, 1.0, 2.675, float("nan")])
def test_b01_float_is_refused_not_guessed(value):
    with pytest.raises(TypeError):
        money(value)


@pytest.mark.parametrize(
    "value, kopecks",
    [
        ("2.675", "2.68"),  # as a float this is 2.67499…; as a Decimal it rounds up
        ("0.005", "0.01"),
        ("0.015", "0.02"),
        ("0.025", "0.03"),  # banker's rounding would give 0.02
        ("1.004", "1.00"),
        ("-0.005", "-0.01"),  # half away from zero for refunds too
        (Decimal("10.125"), "10.13"),
        (3, "3.00"),
        ("1e3", "1000.00"),
        ("  7.5 ", "7.50"),
    ],
)
def test_b01_money_is_quantized_to_kopecks_half_up(value, kopecks):
    result = money(value)
    assert type(result) is Decimal
    assert result == Decimal(kopecks)
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "-Infinity", "1,50", "1e40"])
def test_b01_what_is_not_a_sum_of_money_is_refused(value):
    with pytest.raises(ValueError):
        money(value)


def test_b01_zero_is_zero_kopecks():
    assert ZERO == Decimal("0") and ZERO.as_tuple().exponent == -2
