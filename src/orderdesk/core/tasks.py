from django_tasks import task

from orderdesk.core import outbox


@task()
def deliver_outbox_message(message_id: int) -> str:
    return outbox.deliver(message_id)
