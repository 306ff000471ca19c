from django_tasks import task

from orderdesk.fiscal import services


@task()
def register_receipts(register_id: int) -> int:
    return services.register_pending(register_id)
