"""Money is Decimal quantized to kopecks, end to end (B1). Never float."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

KOPECK = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Decimal | int | str) -> Decimal:
    """Quantize to kopecks, half up as cash registers round; floats are refused, not guessed."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    try:
        amount = Decimal(value)
        if not amount.is_finite():  # NaN quantizes quietly to NaN
            raise InvalidOperation
        return amount.quantize(KOPECK, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not a sum of money: {value!r}") from exc
