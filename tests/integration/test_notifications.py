"""S4: every change the customer cares about reaches the personal account and the mailbox."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orderdesk.core import outbox
from orderdesk.core.models import OutboxMessage
from orderdesk.core.rights import Role
from orderdesk.orders import services
from orderdesk.orders.models import Order
from orderdesk.orders.rules import StatusCode
from orderdesk.orders.schemas import ItemIn, OrderIn
from tests.conftest import order_body, run_worker


def test_s04_new_site_order_mails_the_customer_after_commit(db, smtp_server, site_actor):
    order = services.place_order(site_actor, OrderIn(**order_body(email="anna@example.com"))).order
    assert smtp_server.messages == []  # nothing leaves before the worker runs

    run_worker()

    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "anna@example.com"
    assert f"№{order.number}" in mail["Subject"]
    assert "оформлен" in mail.get_content()


def test_s04_the_plain_text_mail_gives_names_as_written_not_html_escaped(db, smtp_server, site_actor):
    body = order_body(email="anna@example.com")
    body["customer"]["name"] = "ООО «Рога & Копыта» <O'Brien>"
    services.place_order(site_actor, OrderIn(**body))
    run_worker()

    [mail] = smtp_server.wait_for(1)
    text = mail.get_content()
    assert "ООО «Рога & Копыта» <O'Brien>" in text
    assert "&amp;" not in text and "&#x27;" not in text and "&lt;" not in text


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
        run_worker()
        assert len(mailbox.wait_for(1)) == 1
    finally:
        controller.stop()
    message.refresh_from_db()
    assert message.state == OutboxMessage.State.DONE
    assert message.attempts == 2


# ---- what each change tells the customer by e-mail ----

NBSP = "\xa0"


def _place(site_actor, **body):
    return services.place_order(site_actor, OrderIn(**order_body(**body))).order


def _place_for_buyers(site_actor, count: int, batch: str = "") -> list[OutboxMessage]:
    """One order each for buyer0@ … buyer{count-1}@example.com; the mail messages they owe, oldest first."""
    for n in range(count):
        _place(site_actor, external_id=f"site-{batch}{n}", email=f"buyer{n}@example.com")
    return list(OutboxMessage.objects.order_by("pk"))[-count:]


def test_s04_status_change_mails_the_customer_old_and_new_status_in_russian(db, smtp_server, site_actor, actor_of):
    order = _place(site_actor, email="anna@example.com")
    run_worker()
    smtp_server.wait_for(1)

    services.set_status(actor_of(Role.MANAGER), order.pk, StatusCode.AGREED)
    run_worker()

    placed, changed = smtp_server.wait_for(2)
    assert changed["To"] == "anna@example.com"
    assert changed["Subject"] == f"Заказ №{order.number}: Согласован"
    body = changed.get_content()
    assert f"Заказ №{order.number}: статус изменён с «На согласовании» на «Согласован»." in body
    assert "Здравствуйте, Иван Петров!" in body
    assert changed["Content-Language"] == "ru"
    assert changed["Message-ID"] != placed["Message-ID"]


def test_b11_customer_whose_language_is_english_gets_english_mail(db, smtp_server, site_actor, actor_of):
    customer = {**order_body()["customer"], "email": "john@example.com", "name": "John Smith", "language": "en"}
    order = _place(site_actor, customer=customer)
    run_worker()
    services.set_status(actor_of(Role.MANAGER), order.pk, StatusCode.AGREED)
    run_worker()

    placed, changed = smtp_server.wait_for(2)
    assert placed["Subject"] == f"Order №{order.number}: Pending approval"
    assert f"Order №{order.number} has been placed, total 900.00 ₽." in placed.get_content()
    assert "Hello, John Smith!" in placed.get_content()
    assert changed["Subject"] == f"Order №{order.number}: Agreed"
    assert f"Order №{order.number}: the status changed from «Pending approval» to «Agreed»." in changed.get_content()
    assert "Order total: 900.00 ₽" in changed.get_content()
    assert {placed["Content-Language"], changed["Content-Language"]} == {"en"}
    assert "Заказ" not in placed.get_content() + changed.get_content()


def test_s04_items_change_mails_the_new_total(db, smtp_server, site_actor, actor_of):
    order = _place(site_actor, email="anna@example.com")
    run_worker()
    smtp_server.wait_for(1)

    services.replace_items(actor_of(Role.MANAGER), order.pk,
                           [ItemIn(name="Чайник", quantity="1", price="1000.00", vat_rate="22")])
    run_worker()

    _placed, changed = smtp_server.wait_for(2)
    body = changed.get_content()
    assert f"Заказ №{order.number}: изменён состав заказа; сумма теперь 1{NBSP}300,00 ₽ (была 900,00 ₽)." in body
    assert f"Сумма заказа: 1{NBSP}300,00 ₽" in body


def test_s04_customer_with_a_phone_only_gets_no_mail_and_nothing_breaks(db, smtp_server, site_actor):
    customer = {**order_body()["customer"], "email": None}
    _place(site_actor, customer=customer)

    run_worker()

    message = OutboxMessage.objects.get()
    assert message.state == OutboxMessage.State.SKIPPED
    assert message.attempts == 1
    assert "e-mail" in message.last_error
    assert smtp_server.messages == []


def test_b06_sweep_rewakes_a_message_stuck_in_sending_and_it_is_delivered_once(db, smtp_server, site_actor):
    _place(site_actor, email="anna@example.com")
    message = OutboxMessage.objects.get()
    # A worker claimed the message and died before it sent or failed: the row stays "sending".
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=OutboxMessage.State.SENDING, attempts=1, claimed_until=timezone.now() + timedelta(seconds=60))
    run_worker()  # the relay finds the row claimed and leaves it alone
    assert smtp_server.messages == []
    assert outbox.sweep() == 0  # the claim has not expired yet

    OutboxMessage.objects.filter(pk=message.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert outbox.sweep() == 1
    run_worker()
    assert outbox.sweep() == 0
    run_worker()

    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["To"] == "anna@example.com"
    message.refresh_from_db()
    assert (message.state, message.attempts, message.claimed_until) == (OutboxMessage.State.DONE, 2, None)


def test_b06_a_message_already_delivered_is_not_sent_again_when_delivery_runs_twice(db, smtp_server, site_actor):
    _place(site_actor, email="anna@example.com")
    message = OutboxMessage.objects.get()

    first = outbox.deliver(message.pk)
    second = outbox.deliver(message.pk)
    run_worker()  # and the relay's pass finds nothing due

    assert (first, second) == ("done", "not due")
    assert len(smtp_server.messages) == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == (OutboxMessage.State.DONE, 1)


def test_b06_the_relay_delivers_every_due_message_oldest_first_and_a_failure_holds_up_no_other(
        db, smtp_server, site_actor, monkeypatch):
    messages = _place_for_buyers(site_actor, 5)
    real_handler = outbox._handlers[messages[0].topic]

    def failing_for_the_second(message, loaded):
        if message.pk == messages[1].pk:
            raise ConnectionError("the mail server hung up")
        return real_handler.send(message, loaded)

    monkeypatch.setitem(outbox._handlers, messages[0].topic, outbox.Handler(failing_for_the_second, real_handler.load))

    assert outbox.deliver_due(limit=3) == 3
    assert outbox.deliver_due() == 2
    assert outbox.deliver_due() == 0  # the failed one waits for its retry time

    assert [m["To"] for m in smtp_server.wait_for(4)] == [f"buyer{n}@example.com" for n in (0, 2, 3, 4)]
    states = dict(OutboxMessage.objects.values_list("pk", "state"))
    assert states[messages[1].pk] == OutboxMessage.State.PENDING
    assert [states[m.pk] for m in messages if m.pk != messages[1].pk] == [OutboxMessage.State.DONE] * 4


class WorkerKilled(BaseException):
    """Stands for kill -9 in the middle of a send: nothing after it runs."""


def sending_takes(monkeypatch, seconds: float, handler: outbox.Send) -> outbox.Send:
    """The relay's clock moves on by `seconds` with every message the handler sends."""
    clock = [0.0]
    monkeypatch.setattr(outbox, "monotonic", lambda: clock[0])

    def timed(message, loaded):
        clock[0] += seconds
        return handler(message, loaded)

    return timed


def test_b06_outcomes_are_written_every_second_of_sending_and_a_worker_killed_between_loses_none(
        db, smtp_server, site_actor, monkeypatch):
    messages = _place_for_buyers(site_actor, 7)
    real_handler = outbox._handlers[messages[0].topic]
    written = []
    real_finish = outbox._finish
    monkeypatch.setattr(outbox, "_finish", lambda outcomes: written.append(len(outcomes)) or real_finish(outcomes))

    def killed_at_the_fifth(message, loaded):
        if message.pk == messages[4].pk:
            raise WorkerKilled
        return real_handler.send(message, loaded)

    # 0.4 s a message: the outcomes of the first three are written once 1.2 s have gone
    killed_at_the_fifth = sending_takes(monkeypatch, 0.4 * outbox.FINISH_EVERY_SECONDS, killed_at_the_fifth)

    monkeypatch.setitem(outbox._handlers, messages[0].topic, outbox.Handler(killed_at_the_fifth, real_handler.load))
    with pytest.raises(WorkerKilled):
        outbox.deliver_due()

    assert written == [3]  # three outcomes in one transaction; the fourth was sent, its outcome not yet written
    states = list(OutboxMessage.objects.order_by("pk").values_list("state", flat=True))
    assert states == [OutboxMessage.State.DONE] * 3 + [OutboxMessage.State.SENDING] * 4

    monkeypatch.setitem(outbox._handlers, messages[0].topic, outbox.Handler(
        sending_takes(monkeypatch, 0.4 * outbox.FINISH_EVERY_SECONDS, real_handler.send), real_handler.load))
    OutboxMessage.objects.filter(state=OutboxMessage.State.SENDING).update(claimed_until=timezone.now())
    assert outbox.sweep() == 4
    assert outbox.deliver_due() == 4
    assert written == [3, 3, 1]

    sent = sorted(m["To"] for m in smtp_server.wait_for(8))
    assert sent == sorted([f"buyer{n}@example.com" for n in range(7)] + ["buyer3@example.com"])  # at least once
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {OutboxMessage.State.DONE}


def test_b06_a_slow_mail_server_hands_back_what_is_left_once_half_the_claim_has_gone(
        db, smtp_server, site_actor, monkeypatch):
    messages = _place_for_buyers(site_actor, 5)
    real_handler = outbox._handlers[messages[0].topic]
    slow = sending_takes(monkeypatch, 0.3 * outbox.CLAIM_SECONDS, real_handler.send)
    monkeypatch.setitem(outbox._handlers, messages[0].topic, outbox.Handler(slow, real_handler.load))

    assert outbox.deliver_due() == 2  # 0.6 of the claim's time gone: the third is not begun under it

    assert [m["To"] for m in smtp_server.wait_for(2)] == ["buyer0@example.com", "buyer1@example.com"]
    left = OutboxMessage.objects.filter(pk__in=[m.pk for m in messages[2:]])
    assert set(left.values_list("state", "attempts", "claimed_until")) == {(OutboxMessage.State.PENDING, 0, None)}
    monkeypatch.setitem(outbox._handlers, messages[0].topic, real_handler)
    assert outbox.deliver_due() == 3


def test_b06_a_message_claimed_by_one_relay_is_not_taken_by_another(db, smtp_server, site_actor):
    _place(site_actor, email="anna@example.com")
    message = OutboxMessage.objects.get()
    [claimed] = outbox._claim([message.pk])

    assert outbox._claim([message.pk]) == []
    assert outbox.deliver_due() == 0
    assert outbox._send_all([claimed]) == ["done"]
    assert len(smtp_server.wait_for(1)) == 1


def test_b06_a_batch_of_mails_reads_its_events_and_orders_in_a_fixed_number_of_queries(db, smtp_server, site_actor):
    def queries_to_deliver(count: int) -> int:
        _place_for_buyers(site_actor, count, batch=f"{count}-")
        with CaptureQueriesContext(connection) as reads:
            assert outbox.deliver_due() == count
        return sum(1 for q in reads.captured_queries if q["sql"].startswith("SELECT"))

    assert queries_to_deliver(2) == queries_to_deliver(8)  # not one more per message
    assert len(smtp_server.wait_for(10)) == 10


def test_b06_a_batch_of_mails_is_claimed_and_written_down_in_a_fixed_number_of_statements(
        db, smtp_server, site_actor):
    def statements_to_deliver(count: int) -> int:
        _place_for_buyers(site_actor, count, batch=f"{count}-")
        with CaptureQueriesContext(connection) as ran:
            assert outbox.deliver_due() == count
        return len(ran.captured_queries)

    assert statements_to_deliver(2) == statements_to_deliver(8)
    assert len(smtp_server.wait_for(10)) == 10
    assert set(OutboxMessage.objects.values_list("state", "attempts", "claimed_until")) == {
        (OutboxMessage.State.DONE, 1, None)}
    assert OutboxMessage.objects.filter(done_at__isnull=True).count() == 0


def test_b06_when_a_batch_cannot_be_read_every_message_in_it_waits_for_a_retry_and_none_is_lost(
        db, smtp_server, site_actor, monkeypatch):
    topic = _place_for_buyers(site_actor, 3)[0].topic
    real_handler = outbox._handlers[topic]

    def database_away(messages):
        raise ConnectionError("the database went away")

    monkeypatch.setitem(outbox._handlers, topic, outbox.Handler(real_handler.send, database_away))
    assert outbox.deliver_due() == 3
    assert set(OutboxMessage.objects.values_list("state", "attempts")) == {(OutboxMessage.State.PENDING, 1)}

    monkeypatch.setitem(outbox._handlers, topic, real_handler)
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    run_worker()
    assert sorted(m["To"] for m in smtp_server.wait_for(3)) == [f"buyer{n}@example.com" for n in range(3)]


def test_b06_a_mail_about_a_purged_order_is_skipped_not_retried(db, smtp_server, site_actor):
    order = _place(site_actor, email="anna@example.com")
    Order.objects.filter(pk=order.pk).delete()  # the event log outlives a purged order

    run_worker()

    message = OutboxMessage.objects.get()
    assert (message.state, message.last_error) == (OutboxMessage.State.SKIPPED, "the order was purged")
    assert smtp_server.messages == []


def test_b06_a_stopping_relay_hands_back_the_messages_it_claimed_and_did_not_try(db, smtp_server, site_actor):
    _place_for_buyers(site_actor, 3)

    asked = []

    def until_the_first_is_sent() -> bool:  # asked before each message: the stop comes after the first
        asked.append(True)
        return len(asked) == 1

    assert outbox.deliver_due(keep_going=until_the_first_is_sent) == 1

    assert list(OutboxMessage.objects.order_by("pk").values_list("state", "attempts", "claimed_until")) == [
        (OutboxMessage.State.DONE, 1, None), (OutboxMessage.State.PENDING, 0, None), (OutboxMessage.State.PENDING, 0, None)]
    assert outbox.deliver_due() == 2  # due again at once, not after the claim's two minutes
    assert len(smtp_server.wait_for(3)) == 3


def test_b06_a_message_whose_data_cannot_be_read_holds_up_no_other_in_its_batch(
        db, smtp_server, site_actor, monkeypatch):
    messages = _place_for_buyers(site_actor, 3)
    real_handler = outbox._handlers[messages[0].topic]

    def failing_on_the_second(batch):
        if any(m.pk == messages[1].pk for m in batch):
            raise ValueError("a payload this version cannot read")
        return real_handler.load(batch)

    monkeypatch.setitem(outbox._handlers, messages[0].topic, outbox.Handler(real_handler.send, failing_on_the_second))
    assert outbox.deliver_due() == 3

    states = dict(OutboxMessage.objects.values_list("pk", "state"))
    assert [states[m.pk] for m in messages] == [OutboxMessage.State.DONE, OutboxMessage.State.PENDING,
                                                OutboxMessage.State.DONE]
    assert sorted(m["To"] for m in smtp_server.wait_for(2)) == ["buyer0@example.com", "buyer2@example.com"]


def test_b06_a_message_of_a_topic_nobody_handles_waits_for_a_retry_and_holds_up_no_other(db, smtp_server, site_actor):
    stray = outbox.post("nobody.listens", {"x": 1})
    _place(site_actor, email="anna@example.com")

    assert outbox.deliver_due() == 2

    stray.refresh_from_db()
    assert (stray.state, stray.claimed_until) == (OutboxMessage.State.PENDING, None)
    assert "no handler for the topic 'nobody.listens'" in stray.last_error
    assert [m["To"] for m in smtp_server.wait_for(1)] == ["anna@example.com"]
