"""The cash desk's questions and limits (R6, R8, R9, B3, B8) as pure decisions."""

from decimal import Decimal
from enum import StrEnum

from orderdesk.orders.rules import PaymentStatus


class IssueChoice(StrEnum):
    """R6: setting «Issued» on an order not fully paid."""

    BACK = "back"  # back to the order card, nothing changes
    PAY = "pay"  # close the question, nothing changes: the user goes to the cash desk
    ISSUE = "issue"  # status «Issued», payment status unchanged


class SettleChoice(StrEnum):
    """R8: a partly paid order whose amount to pay equals the debt, on the way to the cash desk."""

    YES = "yes"  # «Полный расчёт», status «Issued» set automatically
    NO = "no"  # «Аванс»; the order is issued later


UNPAID = frozenset({PaymentStatus.NOT_PAID, PaymentStatus.PARTIALLY_PAID, PaymentStatus.REFUNDED})


def issue_needs_question(payment_status: str) -> bool:
    """R6: asked for an order that is not paid or partially paid."""
    return payment_status in UNPAID


def settle_needs_question(payment_status: str, amount: Decimal, debt: Decimal, handed_over: bool) -> bool:
    """R8 asks only for a partly paid order when the amount is the whole debt; R9 (less than the
    debt) and B3 (goods already handed over) ask nothing."""
    return payment_status == PaymentStatus.PARTIALLY_PAID and amount == debt and not handed_over


def cash_desk_amount_problem(amount: Decimal, debt: Decimal) -> str | None:
    """Money the cash desk may take for an order: something, and no more than is owed."""
    if amount <= 0:
        return "amount_not_positive"
    if amount > debt:
        return "amount_exceeds_debt"
    return None
