"""Demo data for `make demo`: a person of every role, a site key, an emulator cash desk and online
register, and orders in every status and payment state.

Orders are made, paid and moved through the same services the API calls, so the demo's history,
documents, receipts, notifications and e-mails are the real ones. Running it again adds nothing twice.
"""

import random
from datetime import timedelta
from decimal import Decimal
from typing import TextIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orderdesk.core.accounts import create_user
from orderdesk.core.actors import Actor
from orderdesk.core.models import ApiKey, User
from orderdesk.core.rights import Role
from orderdesk.orders import services
from orderdesk.orders.models import Order
from orderdesk.fiscal.models import Register
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders.rules import PaymentStatus, StatusCode
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.rules import IssueChoice, SettleChoice

DEMO_PASSWORD = "demo-orderdesk"
PEOPLE = [
    (Role.ADMINISTRATOR, "admin@demo.local", "Анна Администратор", "ru"),
    (Role.MANAGER, "manager@demo.local", "Михаил Менеджер", "ru"),
    (Role.CASHIER, "cashier@demo.local", "Катерина Кассир", "ru"),
    (Role.CUSTOMER, "customer@demo.local", "Иван Покупатель", "ru"),
    (Role.CUSTOMER, "customer.en@demo.local", "John Buyer", "en"),
]
DEMO_KEY_NAME = "demo site"
DEMO_1C_KEY_NAME = "demo 1C"

CATALOG = [
    ("KT-100", "Чайник электрический", "шт", "2490.00", "22", "goods"),
    ("CUP-12", "Кружка керамическая", "шт", "390.00", "22", "goods"),
    ("TEA-50", "Чай зелёный, 100 г", "уп", "259.90", "10", "goods"),
    ("BK-001", "Книга «Кулинария»", "шт", "890.00", "10", "goods"),
    ("SRV-AS", "Сборка и установка", "усл", "1500.00", "22", "service"),
    ("CBL-2M", "Кабель питания 2 м", "шт", "349.50", "22", "goods"),
    ("RICE-1", "Рис круглый, 1 кг", "кг", "119.90", "10", "goods"),
]
BUYERS = [
    ("Иван Покупатель", "customer@demo.local", "+79161234567", "ru"),
    ("John Buyer", "customer.en@demo.local", "+79161234568", "en"),
    ("Ольга Смирнова", "olga@example.ru", "+79031112233", "ru"),
    ("Пётр Кузнецов", "petr@example.ru", "+79262223344", "ru"),
    ("ООО «Ромашка»", "buh@romashka.example.ru", "+74951234567", "ru"),
]
# Each route ends in a status; the demo spreads orders over them.
ROUTES = [
    [],
    [StatusCode.AGREED],
    [StatusCode.AGREED, StatusCode.SHIPPED],
    [StatusCode.AGREED, StatusCode.ISSUED],
    [StatusCode.AGREED, StatusCode.SHIPPED, StatusCode.ISSUED, StatusCode.CLOSED],
    [StatusCode.CANCELLED],
]


def _people() -> None:
    for role, email, name, language in PEOPLE:
        if not User.objects.filter(email=email).exists():
            user = create_user(email=email, password=DEMO_PASSWORD, role=role, name=name, language=language)
            if role == Role.CUSTOMER:
                services.link_customer_account(user)


def _demo_key(name: str, role: Role) -> tuple[ApiKey, str]:
    """Keys are stored hashed, so a rerun revokes the old demo key and shows a new one."""
    ApiKey.objects.filter(name=name, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return ApiKey.issue(name=name, role=role)


def _order_body(rng: random.Random, n: int) -> dict:
    name, email, phone, language = BUYERS[n % len(BUYERS)]
    kind = "company" if name.startswith("ООО") else "person"
    lines = rng.sample(CATALOG, rng.randint(1, 4))
    return {
        "external_id": f"demo-{n:04d}",
        "customer": {"kind": kind, "name": name, "email": email, "phone": phone, "language": language},
        "items": [
            {"sku": sku, "name": title, "unit": unit, "quantity": str(rng.randint(1, 3)), "price": price,
             "vat_rate": vat, "kind": kind_}
            for sku, title, unit, price, vat, kind_ in lines
        ],
        "delivery": {"method": rng.choice(["Курьер", "Самовывоз", "Почта России"]), "address": "Москва, ул. Примерная, 1",
                     "price": rng.choice(["0.00", "300.00", "450.00"])},
        "comment": rng.choice(["", "Позвонить за час", "Оставить у консьержа"]),
    }


DEMO_COMPANY = {"company_inn": "7707083893", "company_email": "shop@demo.local",
                "payment_address": "г. Москва, ул. Примерная, 1", "taxation": "osn"}


def _registers() -> Register:
    """An emulator cash desk with its shift open, and an emulator online register for e-receipts."""
    desk, _made = Register.objects.get_or_create(name="Касса №1", defaults={**DEMO_COMPANY, "is_online": False})
    Register.objects.get_or_create(name="Интернет-касса", defaults={**DEMO_COMPANY, "is_online": True})
    if not desk.shifts.filter(closed_at__isnull=True).exists():
        cashier = Actor.for_user(User.objects.get(email="cashier@demo.local"))
        payments.open_shift(cashier, desk.pk)
    return desk


def _work(order: Order, route: list[StatusCode], rng: random.Random, manager: Actor, cashier: Actor,
          desk: Register) -> None:
    """Move the order along its route; pay on the way as a real shop would: something before
    shipping, everything before hand-over; some orders are cancelled with money still on them."""
    on_credit = route[-1:] == [StatusCode.ISSUED] and rng.random() < 0.3  # B3: handed over with a debt
    for status in route:
        if status in (StatusCode.ISSUED, StatusCode.CANCELLED, StatusCode.SHIPPED):
            _pay(order, rng, cashier, desk, in_full=status == StatusCode.ISSUED and not on_credit)
        payments.change_status(manager if status != StatusCode.ISSUED else cashier, order.pk, status,
                               register_id=desk.pk if status == StatusCode.ISSUED else None,
                               choice=IssueChoice.ISSUE if on_credit else None)
        if status == StatusCode.CANCELLED and rng.random() < 0.5:
            _refund_all(order, manager, desk)


def _refund_all(order: Order, manager: Actor, desk: Register) -> None:
    """B4: a cancelled order's advances go back to the buyer."""
    order.refresh_from_db()
    if order.paid_amount > 0:
        payments.refund(manager, order.pk, amount=order.paid_amount, method=PayMethod.CASH, register_id=desk.pk)


def _pay(order: Order, rng: random.Random, cashier: Actor, desk: Register, *, in_full: bool) -> None:
    order.refresh_from_db()
    debt = order.total - order.paid_amount
    if debt <= 0 or (not in_full and rng.random() < 0.4):
        return
    amount = debt if in_full else (debt / 2).quantize(Decimal("0.01"))
    method = rng.choice([PayMethod.CASH, PayMethod.CARD])
    settle = SettleChoice.NO if order.payment_status == PaymentStatus.PARTIALLY_PAID and amount == debt else None
    payments.take_payment(cashier, order.pk, register_id=desk.pk, amount=amount, method=method, settle=settle)


def load_demo_data(orders: int = 50, out: TextIO | None = None) -> None:
    with transaction.atomic():
        _people()
        site_key, secret = _demo_key(DEMO_KEY_NAME, Role.SITE)
        _one_c_key, one_c_secret = _demo_key(DEMO_1C_KEY_NAME, Role.INTEGRATION)
        desk = _registers()
    site = Actor.for_api_key(site_key)
    manager = Actor.for_user(User.objects.get(email="manager@demo.local"))
    cashier = Actor.for_user(User.objects.get(email="cashier@demo.local"))
    now = timezone.now()
    made = 0
    for n in range(1, orders + 1):
        rng = random.Random(n)  # per order, so a rerun rebuilds the very same bodies
        with transaction.atomic():
            placed = services.place_order(site, OrderIn(**_order_body(rng, n)))
            if not placed.created:
                continue
            _work(placed.order, ROUTES[n % len(ROUTES)], rng, manager, cashier, desk)
            Order.objects.filter(pk=placed.order.pk).update(created_at=now - timedelta(days=orders - n, hours=rng.randint(0, 12)))
            made += 1
    if out is not None:
        base = settings.SITE_URL.rstrip("/")
        out.write(
            f"\nDemo data: {made} new orders ({Order.objects.count()} in all).\n"
            f"  API docs:     {base}/api/v1/docs\n"
            f"  Admin:        {base}/admin/\n"
            f"  Online payments: payment links open the sandbox acquirer's page ({settings.YOOKASSA_API_URL})\n"
            f"  Sign in (API): POST {base}/api/v1/auth/login {{\"email\": ..., \"password\": \"{DEMO_PASSWORD}\"}}\n"
            + "".join(f"    {role.value:<14} {email}  /  {DEMO_PASSWORD}\n" for role, email, _n, _l in PEOPLE)
            + f"  1C exchange: {base}/exchange/1c, any user name, password:\n    {one_c_secret}\n"
            + f"  Site API key (Authorization: Bearer ...):\n    {secret}\n"
        )
