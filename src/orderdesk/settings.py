"""Settings read from the environment; every variable is documented in README.md.

With nothing set, the product runs on its embedded defaults: SQLite in WAL mode under ./var/,
mail written to the console, a generated secret key kept in ./var/secret_key.
"""

import os
import secrets
from datetime import date
from pathlib import Path

import dj_database_url

PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("ORDERDESK_VAR_DIR", Path.cwd() / "var")).resolve()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "orderdesk.core",
    "orderdesk.orders",
    "orderdesk.fiscal",
    "orderdesk.payments",
    "orderdesk.acquiring",
    "orderdesk.exchange",
]

MIDDLEWARE = [
    "orderdesk.core.middleware.JsonApiErrors",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "orderdesk.urls"
WSGI_APPLICATION = "orderdesk.wsgi.application"
AUTH_USER_MODEL = "core.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


PREPARE_THRESHOLD = 5  # psycopg's own default, which Django turns off


def _database_from_env() -> dict:
    url = os.environ.get("DATABASE_URL")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / 'orderdesk.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")))
    if config["ENGINE"] == "django.db.backends.postgresql" and os.environ.get("DB_SERVER_SIDE_BINDING", "1") != "0":
        # Parameters bound by the server, and a statement prepared the fifth time it runs, so
        # PostgreSQL stops parsing and planning the hot ones on every call (Django's default
        # sends each query as text with its values spliced in, and prepares nothing unless told
        # a threshold). A pooler that cannot keep prepared statements (PgBouncer in transaction
        # mode before 1.21) needs it off.
        options = config.setdefault("OPTIONS", {})  # beside the URL's own (sslmode…)
        options["server_side_binding"] = True
        options.setdefault("prepare_threshold", PREPARE_THRESHOLD)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of failing
        # with "database is locked" halfway through a transaction; our engine queues them
        # before BEGIN, outside SQLite's sleeping busy handler (orderdesk/core/sqlite/base.py).
        config["ENGINE"] = "orderdesk.core.sqlite"
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        }
        config["CONN_MAX_AGE"] = 0 if url.endswith(":memory:") else config["CONN_MAX_AGE"]
        if not url.endswith(":memory:"):
            # Tests use a file as the product does: Django's default in-memory test database shares
            # one cache between threads and fails with "table is locked" instead of waiting.
            db_file = Path(config["NAME"])
            config["TEST"] = {"NAME": str(db_file.with_name(f"test_{db_file.name}"))}
    return config


DATABASES = {"default": _database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Moscow")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Mail: SMTP when EMAIL_HOST is set, otherwise the console (the demo's "local mail").
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "orderdesk@localhost")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)

SESSION_ENGINE = "orderdesk.core.sessions"
AUTHENTICATION_BACKENDS = ["orderdesk.core.sessions.PersonBackend"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django_tasks_db": {"level": "WARNING"}, "django_tasks": {"level": "WARNING"}},
}

# Outbox delivery: the first retry after this many seconds, doubling up to the cap.
OUTBOX_RETRY_BASE_SECONDS = int(os.environ.get("OUTBOX_RETRY_BASE_SECONDS", "10"))
OUTBOX_RETRY_MAX_SECONDS = int(os.environ.get("OUTBOX_RETRY_MAX_SECONDS", "3600"))

# The emulator register's fiscal memory (orderdesk/fiscal/drivers/emulator_memory.py): a SQLite
# file of its own whatever the database, as a real register keeps its documents on its fiscal drive.
FISCAL_EMULATOR_PATH = Path(os.environ.get("FISCAL_EMULATOR_PATH", VAR_DIR / "fiscal-emulator.sqlite3")).resolve()

# Online payments (R11): the YooKassa API through its official SDK. The default points at the
# sandbox acquirer that `orderdesk serve` starts on loopback; set the real shop's values for production.
YOOKASSA_API_URL = os.environ.get("YOOKASSA_API_URL", "http://127.0.0.1:8001/v3")
YOOKASSA_SHOP_ID = os.environ.get("YOOKASSA_SHOP_ID", "sandbox-shop")
YOOKASSA_SECRET_KEY = os.environ.get("YOOKASSA_SECRET_KEY", "sandbox-secret")
PAYMENT_RETURN_URL = os.environ.get("PAYMENT_RETURN_URL", f"{SITE_URL}/")
ACQUIRER_TIMEOUT_SECONDS = float(os.environ.get("ACQUIRER_TIMEOUT_SECONDS", "15"))
# Notifications are accepted only from these networks; unset means YooKassa's own networks as its
# SDK lists them, plus loopback for the sandbox. The webhook trusts nothing it has not re-read.
ACQUIRER_TRUSTED_NETWORKS = [
    n.strip() for n in os.environ.get("ACQUIRER_TRUSTED_NETWORKS", "").split(",") if n.strip()
]

# The CommerceML exchange with 1C (B10): the charset of every answer (windows-1251, which every 1C
# reads, or utf-8, written with a BOM) and how many orders one `query` hands out; the rest go in
# the next exchange.
EXCHANGE_1C_CHARSET = os.environ.get("EXCHANGE_1C_CHARSET", "windows-1251").strip().lower()
if EXCHANGE_1C_CHARSET not in ("windows-1251", "utf-8"):
    raise ValueError("EXCHANGE_1C_CHARSET must be windows-1251 or utf-8")
EXCHANGE_1C_ORDERS_PER_QUERY = int(os.environ.get("EXCHANGE_1C_ORDERS_PER_QUERY", "1000"))
# One `import` step; 1C's own HTTP timeout is not documented, Bitrix's step is 30 s.
EXCHANGE_1C_IMPORT_STEP_SECONDS = float(os.environ.get("EXCHANGE_1C_IMPORT_STEP_SECONDS", "20"))
# Orders placed before this day (YYYY-MM-DD, in TIME_ZONE) are never offered to 1C: a shop that
# connects 1C after years of orders starts from the day it chooses. Empty: every order.
EXCHANGE_1C_ORDERS_SINCE = os.environ.get("EXCHANGE_1C_ORDERS_SINCE", "").strip()
if EXCHANGE_1C_ORDERS_SINCE:
    date.fromisoformat(EXCHANGE_1C_ORDERS_SINCE)  # a wrong day stops the start, not the exchange
