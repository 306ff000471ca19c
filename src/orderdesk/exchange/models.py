"""What the CommerceML exchange with 1C remembers: its sessions, the files 1C uploads, and per
order what 1C has confirmed and what 1C has told us (B10)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.core.models import ApiKey
from orderdesk.orders.models import Order


class ExchangeSession(models.Model):
    """One run of 1C against us, opened by `checkauth`. 1C sends its token back as a cookie."""

    token_hash = models.CharField(max_length=64, unique=True)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    login = models.CharField(max_length=100, blank=True)  # the user name 1C sent, for the log
    version = models.CharField(max_length=5, blank=True)  # asked for at `init`; empty: the old protocol
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("1C exchange session")


class Upload(models.Model):
    """A file 1C posts with `mode=file`, possibly in several chunks of the same name."""

    session = models.ForeignKey(ExchangeSession, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)  # as cleaned: never a path
    size = models.PositiveBigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    is_archive = models.BooleanField(default=False)  # a ZIP: `import` names the XML inside it
    imported_at = models.DateTimeField(null=True, blank=True)
    applied_count = models.PositiveIntegerField(default=0)  # documents applied by the import's steps so far
    step_until = models.DateTimeField(null=True, blank=True)  # an import step works on the file till then
    report = models.TextField(blank=True)  # what the import said, repeated when 1C asks again
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "filename"], name="exchange_upload_unique_name")]


class UploadChunk(models.Model):
    """Chunks live in the database, so any app server of the shop can take the next one."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["upload", "position"], name="exchange_chunk_unique_position")]


class OrderExchange(models.Model):
    """An order as the exchange knows it: the version last handed out by a `query` (the version
    1C confirmed is the order's own `one_c_confirmed_version`), and the facts 1C reported about
    its copy."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, primary_key=True, related_name="exchange")
    queried_version = models.PositiveIntegerField(default=0)
    queried_session = models.ForeignKey(ExchangeSession, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    one_c_id = models.CharField(_("1C document id"), max_length=80, blank=True, db_index=True)
    one_c_number = models.CharField(_("number in 1C"), max_length=255, blank=True)
    one_c_date = models.DateTimeField(_("date in 1C"), null=True, blank=True)
    posted = models.BooleanField(_("posted in 1C"), default=False)
    one_c_status = models.CharField(_("status in 1C"), max_length=255, blank=True)
    paid_at = models.DateTimeField(_("paid in 1C"), null=True, blank=True)
    payment_number = models.CharField(_("1C payment document"), max_length=255, blank=True)
    shipped_at = models.DateTimeField(_("shipped in 1C"), null=True, blank=True)
    shipment_number = models.CharField(_("1C shipment document"), max_length=255, blank=True)
    applied_digest = models.CharField(max_length=64, blank=True)  # the last document applied, to skip repeats
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("order in the 1C exchange")
