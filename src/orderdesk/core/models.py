import hashlib
import secrets

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.core import rows
from orderdesk.core.rights import Role


class EmailUserManager(UserManager):
    """People sign in with their e-mail; the username column mirrors it for Django's admin."""

    def create_user(self, email, password=None, **extra):
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        return super().create_user(email=email, password=password, **extra)

    def create_superuser(self, email, password=None, **extra):
        email = self.normalize_email(email).lower()
        extra.setdefault("username", email)
        extra.setdefault("role", Role.ADMINISTRATOR)
        return super().create_superuser(email=email, password=password, **extra)


class User(AbstractUser):
    PERSON_ROLES = [(r.value, r.label) for r in Role if r.is_person]

    email = models.EmailField(_("e-mail"), unique=True)
    role = models.CharField(_("role"), max_length=20, choices=PERSON_ROLES, default=Role.CUSTOMER)
    language = models.CharField(_("language"), max_length=2, choices=[("ru", "Русский"), ("en", "English")], default="ru")
    can_edit_quick_orders = models.BooleanField(_("may edit quick orders"), default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["username"]
    objects = EmailUserManager()

    def __str__(self) -> str:
        return self.email


class ApiKey(models.Model):
    """A machine's credential. Only a hash is stored; the key is shown once, when made."""

    MACHINE_ROLES = [(r.value, r.label) for r in Role if not r.is_person]

    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("role"), max_length=20, choices=MACHINE_ROLES)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API key")

    def __str__(self) -> str:
        return f"{self.name} ({self.role}, {self.prefix}…)"

    @staticmethod
    def hash(key: str) -> str:
        # Keys carry 256 random bits, so a fast hash is enough; there is nothing to brute-force.
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, *, name: str, role: str) -> tuple["ApiKey", str]:
        prefix = secrets.token_hex(4)
        key = f"od_{prefix}_{secrets.token_urlsafe(32)}"
        return cls.objects.create(name=name, role=role, prefix=prefix, key_hash=cls.hash(key)), key

    @classmethod
    def live(cls, key: str) -> "ApiKey | None":
        """The unrevoked key whose hash is `key`'s, with its id, name and role read; every machine
        call asks this."""
        return _LIVE_KEY.first(key_hash=cls.hash(key))


_LIVE_KEY = rows.Prepared(lambda key_hash: ApiKey.objects.filter(key_hash=key_hash, revoked_at__isnull=True)
                          .only("id", "name", "role").order_by("id")[:1], key_hash=str)


class Counter(models.Model):
    """Named gap-free counters for human-readable numbers (order №)."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.BigIntegerField(default=0)


class OutboxMessage(models.Model):
    """Work owed to the outside world, written in the same transaction as the change that owes it.

    The background worker delivers it after commit and retries with backoff while the other side
    fails; a crash between "sent" and "marked done" means at-least-once, never lost.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        DONE = "done", _("done")
        SKIPPED = "skipped", _("skipped")

    topic = models.CharField(max_length=50)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outbox_due_idx")]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk} ({self.state})"
