"""S4: every change the customer cares about reaches the personal account and the mailbox."""

import pytest
from django.utils import timezone

from orderdesk.core.models import OutboxMessage
from orderdesk.orders import services
from orderdesk.orders.models import CustomerNotification
from orderdesk.orders.schemas import OrderIn
from tests.conftest import order_body, run_worker


def test_s04_new_site_order_mails_the_customer_after_commit(db, smtp_server, site_actor):
    order = services.place_order(site_actor, OrderIn(**order_body(email="anna@example.com"))).order
    assert smtp_server.messages == []  # nothing leaves before the worker runs

    run_worker()

    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "anna@example.com"
    assert f"№{order.number}" in mail["Subject"]
    assert "оформлен" in mail.get_content()
    assert CustomerNotification.objects.filter(order=order).count() == 1


def test_s04_mail_is_retried_while_smtp_fails_and_sent_once_it_is_back(db, settings, smtp_down, site_actor):
    services.place_order(site_actor, OrderIn(**order_body()))
    run_worker()
    message = OutboxMessage.objects.get()
    assert message.state == OutboxMessage.State.PENDING
    assert message.attempts == 1
    assert message.next_attempt_at > timezone.now()
    assert "Error" in message.last_error or "refused" in message.last_error.lower()

    from tests.conftest import Mailbox, free_port
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings.EMAIL_PORT = controller.port
        OutboxMessage.objects.update(next_attempt_at=timezone.now())
        from django_tasks_db.models import DBTaskResult
        DBTaskResult.objects.update(run_after=timezone.now())
        run_worker()
        assert len(mailbox.wait_for(1)) == 1
    finally:
        controller.stop()
    message.refresh_from_db()
    assert message.state == OutboxMessage.State.DONE
    assert message.attempts == 2
