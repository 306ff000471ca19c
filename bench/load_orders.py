"""Load N site orders of five items each into the database of DATABASE_URL, in bulk through the
product's own models (so the rows are the ones the product writes), with a progress bar on
stderr. Used by `make bench` for the CommerceML export; it is never part of the product.

    DATABASE_URL=... ORDERDESK_VAR_DIR=... python bench/load_orders.py 100000
"""

import os
import sys
import time
from datetime import timedelta
from decimal import Decimal

from progress import progress

BATCH = 2000
ITEMS_PER_ORDER = 5
CUSTOMERS = 5000


def main(n: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderdesk.settings")
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from orderdesk.orders import rules
    from orderdesk.orders.models import Counterparty, Order, OrderItem

    customers = Counterparty.objects.bulk_create(
        [Counterparty(name=f"Покупатель {i}", email=f"buyer{i}@example.com", phone=f"+7916{i:07d}")
         for i in range(CUSTOMERS)], batch_size=BATCH)
    start = timezone.now() - timedelta(days=365)
    step = timedelta(days=365) / n
    price, delivery = Decimal("100.00"), Decimal("300.00")
    items_total = price * ITEMS_PER_ORDER
    started = time.perf_counter()
    for low in range(0, n, BATCH):
        with transaction.atomic():
            made = []
            for i in range(low, min(n, low + BATCH)):
                customer = customers[i % CUSTOMERS]
                number = f"E{i:08d}"
                moment = start + step * i
                made.append(Order(
                    number=number, source=rules.OrderSource.SITE, external_id=f"export-{i}", customer=customer,
                    customer_name=customer.name, customer_email=customer.email, customer_phone=customer.phone,
                    search_text=rules.search_text(number, customer.name, customer.email, customer.phone),
                    status_id=rules.StatusCode.PENDING_APPROVAL, status_changed_at=moment,
                    items_total=items_total, delivery_price=delivery, total=items_total + delivery,
                    delivery_method="courier", delivery_address="Москва, ул. Тверская, 1",
                    created_at=moment, updated_at=moment,
                ))
            orders = Order.objects.bulk_create(made)
            OrderItem.objects.bulk_create([
                OrderItem(order=order, position=p, sku=f"S{p}", name=f"Товар {p}", quantity=Decimal("1"), price=price,
                          amount=price, vat_rate="22")
                for order in orders for p in range(1, ITEMS_PER_ORDER + 1)
            ], batch_size=BATCH)
        progress(min(n, low + BATCH), n, started, unit="orders")


if __name__ == "__main__":
    main(int(sys.argv[1]))
