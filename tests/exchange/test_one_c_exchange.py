"""B10: a client that behaves as 1C runs the CommerceML «sale» exchange against /exchange/1c and
checks what commerceml.md §9 lists: the answers' shapes, the orders document, two-phase delivery,
1C's documents applied once, and every bad call answered with `failure`, never a 500."""

import io
import zipfile
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.exchange.models import OrderExchange, Upload
from orderdesk.exchange.services import orders_due
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from tests.conftest import committed_db, order_body
from tests.exchange.one_c import OneC, commerce_file, documents, order_document, requisites, status_update, text


@pytest.fixture
def integration_key(db):
    return ApiKey.issue(name="1C", role=Role.INTEGRATION)[1]


@pytest.fixture
def one_c(integration_key) -> OneC:
    return OneC(Client(), "1c-exchange", integration_key)


@pytest.fixture
def connected(one_c) -> OneC:
    assert one_c.checkauth().first == "success"
    one_c.init()
    return one_c


@pytest.fixture
def place(site_actor):
    counter = iter(range(1, 10_000))

    def make(**overrides) -> Order:
        return orders.place_order(site_actor, OrderIn(**order_body(f"1c-{next(counter)}", **overrides))).order

    return make


MOSCOW = ZoneInfo("Europe/Moscow")


def numbers(root) -> list[str]:
    return [text(d, "Номер") for d in documents(root)]


# ---- checkauth and init ----


def test_b10_checkauth_with_an_integration_key_answers_success_and_a_cookie(one_c):
    answer = one_c.checkauth()

    assert answer.status == 200
    assert answer.first == "success"
    assert one_c.cookie[0] == "orderdesk_1c" and len(one_c.cookie[1]) >= 32


def test_b10_init_announces_zip_and_the_file_limit(connected):
    answer = connected.answers[-1]

    assert answer.lines[0] == "zip=no"
    assert connected.file_limit == 1_000_000  # under nginx's default body limit
    assert "version=2.08" in answer.lines


@pytest.mark.parametrize("password", ["wrong", ""])
def test_b10_checkauth_with_a_wrong_password_answers_failure_with_a_message(one_c, password):
    one_c.password = password

    answer = one_c.checkauth()

    assert (answer.status, answer.first) == (200, "failure")
    assert answer.lines[1].strip()


def test_b10_a_site_key_is_not_an_integration_key(one_c, db):
    one_c.password = ApiKey.issue(name="site", role=Role.SITE)[1]

    assert one_c.checkauth().first == "failure"


def test_b10_a_revoked_key_ends_its_sessions(connected):
    ApiKey.objects.update(revoked_at=timezone.now())

    answer = connected.call("query")
    assert (answer.status, answer.first) == (200, "failure")


def test_b10_no_credentials_at_all_is_challenged_with_401(one_c):
    answer = one_c.call("checkauth")

    assert answer.status == 401 and answer.first == "failure"
    assert one_c.client.get(f"{one_c.path}?type=sale&mode=query")["WWW-Authenticate"].startswith("Basic")


def test_b10_a_call_with_a_stale_cookie_answers_failure(one_c):
    one_c.cookie = ("orderdesk_1c", "not-a-session")

    answer = one_c.call("init")

    assert (answer.status, answer.first) == (200, "failure")


def test_b10_basic_credentials_on_every_call_work_without_the_cookie(one_c, place):
    place()

    answer = one_c.call("query", basic=True)

    assert answer.status == 200 and answer.content.startswith(b"<?xml")


@pytest.mark.parametrize("query", ["type=catalog&mode=init", "type=sale&mode=launch", "type=&mode=", "mode=query"])
def test_b10_an_unknown_type_or_command_answers_failure(connected, query):
    response = connected.client.get(f"{connected.path}?{query}")

    assert response.status_code == 200
    assert response.content.decode("cp1251").split("\n")[0] == "failure"


def test_b10_the_path_1c_suggests_answers_too(integration_key):
    one_c = OneC(Client(), "1c", integration_key, path="/bitrix/admin/1c_exchange.php")

    assert one_c.checkauth().first == "success"


# ---- the orders document ----


def test_b10_query_gives_every_order_in_windows_1251_with_the_required_elements(connected, place):
    order = place(comment="Позвонить за час ₽")

    root = connected.query()

    assert connected.answers[-1].content.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    assert root.tag == "КоммерческаяИнформация"
    assert root.get("ВерсияСхемы") == "2.08" and len(root.get("ВерсияСхемы")) <= 5
    assert len(root.get("ДатаФормирования")) == 19 and root.get("ДатаФормирования")[10] == "T"
    assert root.find("Контейнер") is None
    [document] = documents(root)
    assert len(text(document, "Ид")) <= 40
    assert text(document, "Номер") == order.number
    assert text(document, "Дата") == order.created_at.astimezone(MOSCOW).strftime("%Y-%m-%d")
    assert text(document, "ХозОперация") == "Заказ товара"
    assert text(document, "Роль") == "Продавец"
    assert text(document, "Валюта") == "RUB" and text(document, "Курс") == "1"
    assert text(document, "Комментарий") == "Позвонить за час ₽"  # a character 1251 lacks, as a reference
    assert "&#8381;".encode() in connected.answers[-1].content
    assert text(document, "Контрагенты/Контрагент/Роль") == "Покупатель"
    assert text(document, "Контрагенты/Контрагент/Наименование") == "Иван Петров"


def test_b10_the_document_sum_is_the_sum_of_its_lines_with_the_delivery_line_as_a_service(connected, place):
    order = place()

    [document] = documents(connected.query())

    lines = document.findall("Товары/Товар")
    assert Decimal(text(document, "Сумма")) == sum(Decimal(text(line, "Сумма")) for line in lines) == order.total
    for value in [text(document, "Сумма")] + [text(line, p) for line in lines for p in ("Сумма", "ЦенаЗаЕдиницу")]:
        assert "." in value and len(value.split(".")[1]) == 2
    delivery = [line for line in lines if text(line, "Ид") == "ORDER_DELIVERY"]
    assert len(delivery) == 1 and Decimal(text(delivery[0], "Сумма")) == order.delivery_price
    assert requisites(delivery[0]) == {"ВидНоменклатуры": "Услуга", "ТипНоменклатуры": "Услуга"}
    goods = [line for line in lines if text(line, "Ид") != "ORDER_DELIVERY"]
    assert {requisites(line)["ТипНоменклатуры"] for line in goods} == {"Товар"}
    assert {text(line, "СтавкиНалогов/СтавкаНалога/Ставка") for line in lines} == {"22"}
    vat = sum(Decimal(text(line, "Налоги/Налог/Сумма")) for line in lines)
    assert Decimal(text(document, "Налоги/Налог/Сумма")) == vat
    assert vat == sum((Decimal(text(line, "Сумма")) * 22 / 122).quantize(Decimal("0.01")) for line in lines)


def test_b10_order_requisites_tell_status_payment_and_cancellation(connected, place, actor_of):
    order = place()
    orders.set_status(actor_of("manager"), order.pk, "cancelled")

    [document] = documents(connected.query())

    values = requisites(document)
    assert values["Статуса заказа ИД"] == "cancelled"
    assert values["Статус заказа"].startswith("[cancelled] ")
    assert values["Отменен"] == "true" and values["Заказ оплачен"] == "false"


def test_b10_utf8_output_is_a_setting_and_carries_a_bom(connected, place, settings):
    settings.EXCHANGE_1C_CHARSET = "utf-8"
    place()

    root = connected.query()

    assert connected.answers[-1].content.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>')
    assert len(documents(root)) == 1


def test_b10_version_2_05_names_the_unit_in_base_unit(one_c, place):
    place()
    one_c.checkauth()
    one_c.init(version="2.05")

    [document] = documents(one_c.query())

    unit = document.find("Товары/Товар/БазоваяЕдиница")
    assert unit is not None and unit.get("Код") == "796"
    assert document.find("Товары/Товар/Единица") is None


# ---- two-phase delivery ----


def test_b10_a_query_without_success_gives_the_same_orders_again(connected, place):
    first, second = place(), place()

    assert numbers(connected.query()) == [first.number, second.number]
    assert numbers(connected.query()) == [first.number, second.number]


def test_b10_success_confirms_what_the_query_gave_and_only_new_changes_come_next(connected, place, actor_of):
    first, second = place(), place()
    connected.query()

    assert connected.success().lines == ["success"]

    assert numbers(connected.query()) == []
    orders.set_status(actor_of("manager"), second.pk, "agreed")
    third = place()
    assert numbers(connected.query()) == [second.number, third.number]


def test_b10_an_order_changed_between_query_and_success_comes_again(connected, place, actor_of):
    order = place()
    connected.query()
    orders.set_status(actor_of("manager"), order.pk, "agreed")

    connected.success()

    assert numbers(connected.query()) == [order.number]
    assert requisites(documents(connected.query())[0])["Статуса заказа ИД"] == "agreed"


def test_b10_a_query_hands_out_at_most_the_configured_number_of_orders(connected, place, settings):
    settings.EXCHANGE_1C_ORDERS_PER_QUERY = 2
    made = [place() for _ in range(3)]

    assert numbers(connected.query()) == [o.number for o in made[:2]]
    connected.success()
    assert numbers(connected.query()) == [made[2].number]


def test_b10_the_orders_1c_lacks_are_found_by_their_partial_index_not_by_reading_every_order(db):
    sql, params = orders_due().query.sql_with_params()

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        else:  # a tiny table is read whole by choice; forbid that to see whether the index can serve
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        plan = " ".join(str(row) for row in cursor.fetchall())

    assert "order_due_to_1c_idx" in plan


def confirmed_versions_in_the_exchange_table() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT order_id, confirmed_version FROM exchange_orderexchange")
        return dict(cursor.fetchall())


@committed_db
def test_b10_the_versions_1c_confirmed_move_to_the_order_and_back_with_the_migration(connected, place, actor_of):
    confirmed, changed_since = place(), place()
    connected.query()
    connected.success()
    orders.set_status(actor_of("manager"), changed_since.pk, "agreed")
    never_handed_out = place()
    before = dict(Order.objects.values_list("pk", "one_c_confirmed_version"))

    call_command("migrate", "exchange", "0001", verbosity=0)
    assert confirmed_versions_in_the_exchange_table() == {confirmed.pk: 1, changed_since.pk: 1}
    Order.objects.update(one_c_confirmed_version=None)  # as before the upgrade: the order had no such value
    call_command("migrate", "exchange", verbosity=0)

    assert dict(Order.objects.values_list("pk", "one_c_confirmed_version")) == before == {
        confirmed.pk: 1, changed_since.pk: 1, never_handed_out.pk: None}
    assert numbers(connected.query()) == [changed_since.number, never_handed_out.number]


# ---- 1C's documents ----


def test_b10_a_posted_and_paid_document_agrees_the_order_and_keeps_1cs_payment_as_a_fact(connected, place):
    order = place()

    answer = connected.upload("documents___a.xml", status_update(
        order.number, **{"Номер по 1С": "ТД00-000731", "Дата по 1С": "2026-03-14T16:05:11", "Проведен": "true",
                         "Дата оплаты по 1С": "2026-03-15T10:20:00", "Номер оплаты по 1С": "ТД00-000412",
                         "Дата отгрузки по 1С": "T", "Статус заказа": "К выполнению"}))
    assert answer.first == "success"
    assert connected.import_file("documents___a.xml").first == "success"

    order.refresh_from_db()
    assert order.status_id == "agreed"
    assert order.payment_status == "not_paid" and order.paid_amount == 0  # 1C fiscalised it; no amount is known
    assert not order.receipts.exists()
    state = OrderExchange.objects.get(order=order)
    assert (state.one_c_number, state.payment_number, state.one_c_status) == ("ТД00-000731", "ТД00-000412", "К выполнению")
    assert state.posted and state.paid_at is not None and state.shipped_at is None
    codes = list(order.events.values_list("code", flat=True))
    assert codes[-2:] == ["order.status.changed", "order.1c.updated"]
    assert order.events.get(code="order.status.changed").actor_role == "integration"


def test_b10_a_long_import_answers_progress_and_each_call_goes_on_where_the_last_stopped(connected, place, settings):
    settings.EXCHANGE_1C_IMPORT_STEP_SECONDS = 0  # every step is over after its first document
    made = [place() for _ in range(3)]
    unknown = order_document("999999", Проведен="true")
    connected.upload("a.xml", commerce_file(unknown, *(order_document(o.number, Проведен="true") for o in made)))

    def agreed() -> list[bool]:
        return [Order.objects.get(pk=o.pk).status_id == "agreed" for o in made]

    steps = [connected.call("import", filename="a.xml") for _ in range(3)]
    assert [a.lines for a in steps] == [["progress", f"Применено документов: {n} из 4"] for n in (1, 2, 3)]
    assert agreed() == [True, True, False]

    last = connected.call("import", filename="a.xml")
    assert last.lines == ["success", "Заказ №999999 на сайте не найден."]  # the first step's remark, kept
    assert agreed() == [True, True, True]
    assert connected.call("import", filename="a.xml").lines == last.lines  # done: asked again, the same answer
    assert Order.objects.get(pk=made[0].pk).events.filter(code="order.status.changed").count() == 1


def test_b10_an_import_step_left_unrecorded_by_a_crash_applies_its_documents_again_to_no_effect(
        connected, place, settings):
    settings.EXCHANGE_1C_IMPORT_STEP_SECONDS = 0
    order = place()
    connected.upload("a.xml", commerce_file(order_document(order.number, Проведен="true"),
                                            order_document(order.number, Проведен="true", ПометкаУдаления="true")))
    assert connected.call("import", filename="a.xml").first == "progress"
    Upload.objects.update(applied_count=0)  # as if the step's record was lost with the server

    assert connected.import_file("a.xml").first == "success"

    order.refresh_from_db()
    assert (order.status_id, order.deletion_mark) == ("agreed", True)
    assert order.events.filter(code="order.status.changed").count() == 1


def test_b10_while_one_call_applies_the_file_another_hears_progress_and_a_crashed_steps_claim_runs_out(
        connected, place):
    order = place()
    connected.upload("a.xml", status_update(order.number, Проведен="true"))
    Upload.objects.update(step_until=timezone.now() + timedelta(seconds=30))  # another call's step at work

    busy = connected.call("import", filename="a.xml")

    assert busy.lines == ["progress", "Файл применяется (применено документов: 0); повторите запрос."]
    order.refresh_from_db()
    assert order.status_id != "agreed"
    Upload.objects.update(step_until=timezone.now() - timedelta(seconds=1))  # that step died: its claim ran out
    assert connected.call("import", filename="a.xml").lines == ["success"]
    order.refresh_from_db()
    assert order.status_id == "agreed"
    assert Upload.objects.get().step_until is None


def test_b10_a_shipment_in_1c_ships_the_order(connected, place):
    order = place()

    connected.upload("a.xml", status_update(order.number, Проведен="true", **{"Дата отгрузки по 1С": "15.03.2026 12:00:00"}))
    connected.import_file("a.xml")

    order.refresh_from_db()
    assert order.status_id == "shipped"


def test_b10_a_deletion_mark_and_cancellation_from_1c_mark_and_cancel_and_can_be_undone(connected, place):
    order = place()

    connected.upload("a.xml", status_update(order.number, ПометкаУдаления="true", Отменен="true"))
    connected.import_file("a.xml")
    order.refresh_from_db()
    assert (order.deletion_mark, order.status_id) == (True, "cancelled")

    connected.upload("a.xml", status_update(order.number, ПометкаУдаления="false"))
    connected.import_file("a.xml")
    order.refresh_from_db()
    assert order.deletion_mark is False


def test_b10_the_deletion_mark_as_an_element_counts_as_the_requisite_does(connected, place):
    order = place()
    data = status_update(order.number).replace("<Валюта>".encode(), "<ПометкаУдаления>true</ПометкаУдаления><Валюта>".encode())

    connected.upload("a.xml", data)
    connected.import_file("a.xml")

    order.refresh_from_db()
    assert order.deletion_mark is True


def test_b10_orders_updated_by_1c_are_not_echoed_back(connected, place):
    order = place()
    connected.query()
    connected.success()

    connected.upload("a.xml", status_update(order.number, Проведен="true"))
    connected.import_file("a.xml")

    order.refresh_from_db()
    assert order.status_id == "agreed"
    assert numbers(connected.query()) == []


def test_b10_the_same_file_posted_again_changes_nothing_more(connected, place):
    order = place()
    data = status_update(order.number, Проведен="true", **{"Номер по 1С": "ТД-1"})

    for _ in range(3):
        connected.upload("a.xml", data)
        assert connected.import_file("a.xml").first == "success"

    assert order.events.filter(code="order.1c.updated").count() == 1
    assert order.events.filter(code="order.status.changed").count() == 1


def test_b10_a_file_in_chunks_is_joined_in_order(connected, place):
    order = place()
    data = status_update(order.number, Проведен="true")

    connected.upload("big.xml", data, chunk=97)
    connected.import_file("big.xml")

    order.refresh_from_db()
    assert order.status_id == "agreed"


def test_b10_a_zip_upload_is_read_and_import_names_the_xml_inside(connected, place):
    order = place()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("orders.xml", status_update(order.number, Проведен="true"))

    connected.upload("v8_3B8F_3e.zip", archive.getvalue())
    assert connected.import_file("orders.xml").first == "success"

    order.refresh_from_db()
    assert order.status_id == "agreed"


def test_b10_windows_1251_files_and_1cs_number_and_date_quirks_are_read(connected, place):
    order = place(items=5)  # total 1 800.00: 1C writes it «1 800,00», with a non-breaking space
    one_c_total = f"{order.total:,.2f}".replace(",", "\u00a0").replace(".", ",")
    data = status_update(order.number, Проведен="true", **{"Дата оплаты по 1С": "T"}).decode("utf-8").lstrip("\ufeff")
    data = data.replace('encoding="UTF-8"', 'encoding="windows-1251"').replace(
        "<Курс>1</Курс>", f"<Курс>1</Курс><Сумма>{one_c_total}</Сумма>")

    connected.upload("a.xml", data.encode("cp1251"))
    answer = connected.import_file("a.xml")

    assert answer.lines == ["success"]  # the total was read as ours: no remark that it differs
    order.refresh_from_db()
    assert order.status_id == "agreed"
    assert OrderExchange.objects.get(order=order).paid_at is None


def test_b10_the_old_protocol_applies_the_file_when_it_is_posted(one_c, place):
    order = place()
    one_c.checkauth()
    one_c.init(version=None)

    answer = one_c.upload("orders.xml", status_update(order.number, Проведен="true"))

    assert answer.first == "success"
    order.refresh_from_db()
    assert order.status_id == "agreed"


def test_b10_a_document_for_an_unknown_number_is_reported_by_its_number(connected, place):
    order = place()
    data = status_update("999999", Проведен="true")

    connected.upload("a.xml", data)
    answer = connected.import_file("a.xml")

    assert answer.first == "success"
    assert any("999999" in line for line in answer.lines[1:])
    order.refresh_from_db()
    assert order.status_id == "pending_approval"


def test_b10_a_move_the_lifecycle_forbids_is_reported_not_forced(connected, place, actor_of, registers):
    order = place()
    orders.set_status(actor_of("manager"), order.pk, "agreed")
    payments.change_status(actor_of("administrator"), order.pk, "issued", choice="issue", register_id=registers.desk.pk)

    connected.upload("a.xml", status_update(order.number, Отменен="true"))
    answer = connected.import_file("a.xml")

    order.refresh_from_db()
    assert order.status_id == "issued"
    assert len(answer.lines) == 2 and order.number in answer.lines[1] and "Выдан" in answer.lines[1]


def test_b10_a_3_1_container_upload_is_accepted(connected, place):
    order = place()
    data = status_update(order.number, Проведен="true").replace(
        "<Документ>".encode(), "<Контейнер><Документ>".encode()).replace(
        "</Документ>".encode(), "</Документ></Контейнер>".encode())

    connected.upload("a.xml", data)
    connected.import_file("a.xml")

    order.refresh_from_db()
    assert order.status_id == "agreed"


@pytest.mark.parametrize("filename", ["../../etc/passwd", "C:\\v8_8789_c.xml", "/tmp/orders.xml", "webdata/a.xml"])
def test_b10_a_path_in_filename_is_cut_to_its_last_part(connected, place, filename):
    order = place()

    connected.upload(filename, status_update(order.number, Проведен="true"))
    answer = connected.import_file(filename)

    assert answer.first == "success"
    order.refresh_from_db()
    assert order.status_id == "agreed"


@pytest.mark.parametrize("filename", ["..", "", "a\x01b.xml"])
def test_b10_a_filename_that_is_no_file_name_answers_failure(connected, filename):
    answer = connected.call("file", method="post", body=b"<?xml version='1.0'?><a/>", filename=filename)

    assert (answer.status, answer.first) == (200, "failure")


@pytest.mark.parametrize("body", ["<?xml version='1.0'?><КоммерческаяИнформация><Документ>".encode(), b"not xml at all",
                                  "<?xml version='1.0'?><Корень/>".encode()])
def test_b10_a_malformed_file_answers_failure_and_changes_nothing(connected, place, body):
    order = place()

    connected.upload("a.xml", body)
    answer = connected.import_file("a.xml")

    assert (answer.status, answer.first) == (200, "failure")
    assert answer.lines[1].strip()
    order.refresh_from_db()
    assert order.version == 1


def test_b10_query_before_checkauth_is_challenged(one_c):
    assert one_c.call("query").status == 401


def test_b10_the_order_card_shows_what_1c_confirmed_and_reported(connected, place, manager):
    order = place()
    path = f"/api/v1/orders/{order.pk}/exchange-1c"
    assert manager.get(path).json()["confirmed"] is False

    connected.query()
    connected.success()
    connected.upload("a.xml", status_update(order.number, Проведен="true", **{"Номер по 1С": "ТД00-000731"}))
    connected.import_file("a.xml")

    card = manager.get(path).json()
    assert card["confirmed"] is True and card["version"] == card["confirmed_version"] == 2
    assert (card["one_c_number"], card["posted"]) == ("ТД00-000731", True)


def test_b10_text_xml_cannot_hold_is_left_out_of_the_orders_document(connected, place):
    place(comment="Позвонить\x0b за\x01 час", customer={"kind": "person", "name": "Иван\x1f Петров",
                                                          "email": "buyer@example.com", "phone": "+7 912 345-67-89"})

    [document] = documents(connected.query())

    assert text(document, "Комментарий") == "Позвонить за час"
    assert text(document, "Контрагенты/Контрагент/Наименование") == "Иван Петров"


def test_b10_a_change_of_ours_1c_has_not_had_still_goes_out_after_1c_changed_the_order(connected, place, actor_of):
    order = place()
    connected.query()
    connected.success()
    orders.set_removal_mark(actor_of("manager"), order.pk, True)

    connected.upload("a.xml", status_update(order.number, Проведен="true"))
    connected.import_file("a.xml")

    [document] = documents(connected.query())
    assert text(document, "Номер") == order.number
    assert requisites(document)["Статуса заказа ИД"] == "agreed"


# ---- what a real 1C does that a tidy client does not ----


def test_b10_one_document_that_cannot_be_applied_holds_up_no_other_in_its_file(connected, place, registers, actor_of):
    from orderdesk.fiscal.rules import PayMethod

    quick = payments.quick_sale(actor_of("cashier"), register_id=registers.desk.pk, method=PayMethod.CASH,
                                items=OrderIn(**order_body("q")).items).order  # needs the «edit quick orders» right
    order = place()
    both = commerce_file(order_document(quick.number, ПометкаУдаления="true"),
                         order_document(order.number, Проведен="true"))

    connected.upload("a.xml", both)
    answer = connected.import_file("a.xml")

    assert answer.first == "success"
    assert len(answer.lines) == 2 and quick.number in answer.lines[1]
    quick.refresh_from_db()
    order.refresh_from_db()
    assert quick.deletion_mark is False
    assert order.status_id == "agreed"


def test_b10_a_status_text_longer_than_its_column_is_kept_cut(connected, place):
    order = place()

    connected.upload("a.xml", status_update(order.number, **{"Статус заказа": "Я" * 300}))
    assert connected.import_file("a.xml").lines == ["success"]

    assert OrderExchange.objects.get(order=order).one_c_status == "Я" * 255


def test_b10_a_document_that_leaves_a_requisite_out_keeps_what_1c_said_before(connected, place):
    order = place()
    connected.upload("a.xml", status_update(order.number, Проведен="true", **{
        "Номер по 1С": "ТД-1", "Дата оплаты по 1С": "2026-03-15T10:20:00"}))
    connected.import_file("a.xml")

    connected.upload("b.xml", status_update(order.number, **{"Статус заказа": "В работе"}))
    connected.import_file("b.xml")

    state = OrderExchange.objects.get(order=order)
    assert (state.posted, state.one_c_number, state.one_c_status) == (True, "ТД-1", "В работе")
    assert state.paid_at is not None

    connected.upload("c.xml", status_update(order.number, **{"Дата оплаты по 1С": "T"}))
    connected.import_file("c.xml")
    assert OrderExchange.objects.get(order=order).paid_at is None  # an empty date is 1C taking it back


def test_b10_a_1c_sending_basic_credentials_on_every_call_keeps_one_session(one_c, place):
    from orderdesk.exchange.models import ExchangeSession

    order = place()
    one_c.call("init", basic=True, version="2.08")
    assert [text(d, "Номер") for d in documents(__import__("lxml.etree").etree.fromstring(
        one_c.call("query", basic=True).content))] == [order.number]

    one_c.call("success", basic=True)

    assert b"<\xc4\xee\xea\xf3\xec\xe5\xed\xf2>" not in one_c.call("query", basic=True).content
    assert ExchangeSession.objects.count() == 1


def test_b10_a_file_1c_sent_but_never_had_imported_is_applied_at_the_next_init(connected, place):
    order = place()
    connected.upload("a.xml", status_update(order.number, Проведен="true"))

    connected.init()

    order.refresh_from_db()
    assert order.status_id == "agreed"


def test_b10_import_of_a_name_never_uploaded_applies_no_other_file(connected, place):
    order = place()
    connected.upload("a.xml", status_update(order.number, Проведен="true"))

    answer = connected.import_file("other.xml")

    assert answer.first == "failure"
    order.refresh_from_db()
    assert order.status_id == "pending_approval"


def test_b10_the_old_protocol_waits_for_the_last_chunk_before_it_applies_the_file(one_c, place):
    order = place()
    one_c.checkauth()
    one_c.init(version=None)
    data = status_update(order.number, Проведен="true")

    first = one_c.call("file", method="post", body=data[:200], filename="orders.xml")
    order.refresh_from_db()
    assert first.first == "success" and order.status_id == "pending_approval"

    assert one_c.upload("orders.xml", data[200:], chunk=150).first == "success"
    order.refresh_from_db()
    assert order.status_id == "agreed"


def test_b10_a_file_cut_into_too_many_slivers_is_refused(connected):
    answer = connected.upload("a.xml", b"<?xml version='1.0'?>" + b" " * 300, chunk=1)

    assert answer.first == "failure" and "256" in answer.lines[1]


def test_b10_a_discount_is_written_so_1c_computes_our_line_sum(connected, place):
    place()  # each item: 2 × 150.50 less 1.00

    [document] = documents(connected.query())

    for line in document.findall("Товары/Товар"):
        discount = Decimal(text(line, "Скидки/Скидка/Сумма") or "0")
        assert (Decimal(text(line, "ЦенаЗаЕдиницу")) * Decimal(text(line, "Количество")) - discount
                == Decimal(text(line, "Сумма")))
    assert {text(line, "Скидки/Скидка/УчтеноВСумме") for line in document.findall("Товары/Товар")
            if text(line, "Ид") != "ORDER_DELIVERY"} == {"true"}


def test_b10_a_product_without_sku_has_one_id_across_orders(connected, site_actor):
    for n in range(2):
        body = order_body(f"no-sku-{n}")
        body["items"] = [{"name": "Чайник", "quantity": "1", "price": "1000.00", "vat_rate": "22"}]
        orders.place_order(site_actor, OrderIn(**body))

    ids = {text(line, "Ид") for d in documents(connected.query()) for line in d.findall("Товары/Товар")
           if text(line, "Ид") != "ORDER_DELIVERY"}

    assert len(ids) == 1 and len(ids.pop()) <= 80


def test_b10_orders_placed_before_the_day_the_shop_chose_are_never_offered(connected, place, settings):
    old, new = place(), place()
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    settings.EXCHANGE_1C_ORDERS_SINCE = (timezone.localdate() - timedelta(days=30)).isoformat()

    assert numbers(connected.query()) == [new.number]
