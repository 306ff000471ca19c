from django_tasks import task

from orderdesk.fiscal import services


@task()
def register_receipts(register_id: int) -> int:
    """Jobs queued by earlier versions, which woke a register with a job per payment, still find
    their function after an upgrade; nothing queues them now (the worker's receipt relay polls)."""
    return services.register_pending(register_id)
