"""R10: auto-close (Settings → General → Scheduler) closes orders handed over N days ago once they
are paid; an order not paid or partially paid is never closed automatically."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order, OrderEvent
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.rules import IssueChoice
from tests.conftest import order_body

D = Decimal


@pytest.fixture
def admin(actor_of):
    return actor_of("administrator")


@pytest.fixture
def shop(admin):
    return orders.update_settings(admin, auto_close_enabled=True, auto_close_after_days=3)


@pytest.fixture
def issued(site_actor, admin, registers):
    """issued(paid="900.00", days_ago=4) → an order issued that many days ago after that much was paid."""
    counter = iter(range(1, 100_000))

    def make(paid: str = "900.00", days_ago: float = 4) -> Order:
        order = orders.place_order(site_actor, OrderIn(**order_body(f"ac-{next(counter)}"))).order
        orders.set_status(admin, order.pk, "agreed")
        if D(paid):
            payments.take_payment(admin, order.pk, register_id=registers.desk.pk, amount=D(paid),
                                  method=PayMethod.CASH, settle=None)
        payments.change_status(admin, order.pk, "issued", choice=IssueChoice.ISSUE, register_id=registers.desk.pk)
        Order.objects.filter(pk=order.pk).update(status_changed_at=timezone.now() - timedelta(days=days_ago))
        order.refresh_from_db()
        assert order.status_id == "issued"
        return order

    return make


def status_of(order: Order) -> tuple[str, str]:
    order.refresh_from_db()
    return order.status_id, order.payment_status


def test_r10_a_paid_order_issued_longer_ago_than_the_setting_is_closed(shop, issued):
    old = issued(days_ago=4)
    recent = issued(days_ago=1)

    closed = payments.auto_close()

    assert closed == [old.number]
    assert status_of(old) == ("closed", "paid")
    assert status_of(recent) == ("issued", "paid")
    [event] = OrderEvent.objects.filter(order=old, code="order.status.changed", payload__status=["issued", "closed"])
    assert (event.actor_label, event.actor_role) == ("system", "administrator")


def test_r10_an_order_issued_on_credit_is_never_closed_automatically(shop, issued):
    unpaid = issued(paid="0.00", days_ago=30)
    partly = issued(paid="500.00", days_ago=30)
    assert status_of(unpaid) == ("issued", "not_paid")
    assert status_of(partly) == ("issued", "partially_paid")

    assert payments.auto_close() == []

    assert status_of(unpaid) == ("issued", "not_paid")
    assert status_of(partly) == ("issued", "partially_paid")


def test_r10_an_order_issued_on_credit_is_closed_once_its_debt_is_paid(shop, issued, admin, registers):
    partly = issued(paid="500.00", days_ago=4)
    assert payments.auto_close() == []

    payments.take_payment(admin, partly.pk, register_id=registers.desk.pk, amount=D("400.00"), method=PayMethod.CARD)

    assert payments.auto_close() == [partly.number]
    assert status_of(partly) == ("closed", "paid")


def test_r10_nothing_is_closed_when_the_setting_is_off(shop, issued, admin):
    old = issued(days_ago=10)
    orders.update_settings(admin, auto_close_enabled=False)

    assert payments.auto_close() == []

    assert status_of(old) == ("issued", "paid")


def test_r10_the_number_of_days_is_the_setting(shop, issued, admin):
    old = issued(days_ago=4)
    orders.update_settings(admin, auto_close_after_days=5)
    assert payments.auto_close() == []

    orders.update_settings(admin, auto_close_after_days=4)
    assert payments.auto_close() == [old.number]


def test_r10_running_auto_close_twice_is_harmless(shop, issued):
    old = issued(days_ago=4)

    first = payments.auto_close()
    second = payments.auto_close()

    assert (first, second) == ([old.number], [])
    assert status_of(old) == ("closed", "paid")
    assert OrderEvent.objects.filter(order=old, code="order.status.changed",
                                     payload__status=["issued", "closed"]).count() == 1
