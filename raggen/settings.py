"""The one settings module. Every value comes from the environment, with a default that lets
``make run`` boot on a clean machine (SQLite, in-memory channel layer, in-process tasks).

``.env.example`` and the README list every variable.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
import django_stubs_ext

from raggen.env import (
    EnvError,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_path,
    env_secret,
    env_str,
    env_url,
)
from raggen.storage_url import default_storage_from_url

# Lets generic classes such as ModelAdmin[Model] be subscripted at run time (typing only).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("DATA_DIR", BASE_DIR / "data")
DATA_DIR.mkdir(parents=True, exist_ok=True)

# Off unless asked for: a 500 then shows no traceback and no settings. DEBUG=true for development.
DEBUG = env_bool("DEBUG", False)


def _generated_secret_key() -> str:
    """A key generated once into DATA_DIR/secret_key (mode 0600) and reused, so that sessions
    survive restarts and processes sharing DATA_DIR agree. Created whole or not at all: written to
    a private temporary file, then linked into place (a second process that loses the race reads
    the winner's key)."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd, name = tempfile.mkstemp(dir=DATA_DIR, prefix=".secret_key-")  # mode 0600
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(50))
            path.hardlink_to(temporary)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise EnvError(f"SECRET_KEY is unset and {path} cannot be read: {exc.strerror}") from None
    if not key:
        raise EnvError(f"SECRET_KEY is unset and {path} is empty: delete it or set SECRET_KEY")
    return key


SECRET_KEY = env_secret("SECRET_KEY") or _generated_secret_key()
# Unset: this machine only. A server reached by another name lists it here.
LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or list(LOCAL_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.yandex",
    "raggen",
    "accounts",
    "embeddings",
    "documents",
    "providers",
    "usage",
    "provider_settings",
    "chat",
    "web",
]

MIDDLEWARE = [
    "raggen.observability.RequestIdMiddleware",
    "raggen.observability.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "raggen.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "raggen.urls"
ASGI_APPLICATION = "raggen.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database: SQLite under DATA_DIR unless DATABASE_URL names PostgreSQL -----------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    _db = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True))
else:
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "raggen.sqlite3"}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the web process and its task threads write without
    # "database is locked" errors.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that the worker and server processes that tests start share it;
    # one per test run, so that two runs on one machine do not collide.
    _db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"raggen-test-{os.getpid()}.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery, Channels --------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"))
BACKGROUND_TASKS = env_choice(
    "BACKGROUND_TASKS", ("celery", "thread", "eager"), "celery" if REDIS_URL else "thread"
)
if BACKGROUND_TASKS == "celery" and not REDIS_URL:
    raise EnvError("BACKGROUND_TASKS=celery needs REDIS_URL: set REDIS_URL=redis://host:6379/0")
BACKGROUND_THREADS = env_int("BACKGROUND_THREADS", 2, minimum=1, maximum=32)

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task whose worker dies is redelivered after this many seconds (Redis visibility timeout).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=10)
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds rate-limit counters: local memory in one process, Redis shared by all of them.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "raggen",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts (django-allauth) -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "ACCOUNT_EMAIL_VERIFICATION", ("none", "optional", "mandatory"), "none"
)
ACCOUNT_ALLOW_SIGNUP = env_bool("ACCOUNT_ALLOW_SIGNUP", True)
ACCOUNT_ADAPTER = "raggen.accounts.AccountAdapter"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"

# Optional sign-in with Yandex ID and one OpenID Connect provider, from the environment only (no
# SocialApp rows): a provider appears on the login page only when its client id is set.
YANDEX_OAUTH_CLIENT_ID = env_str("YANDEX_OAUTH_CLIENT_ID")
YANDEX_OAUTH_CLIENT_SECRET = env_secret("YANDEX_OAUTH_CLIENT_SECRET")
OIDC_PROVIDER_URL = env_url("OIDC_PROVIDER_URL", ("https", "http"))
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_secret("OIDC_CLIENT_SECRET")
OIDC_NAME = env_str("OIDC_NAME", "OpenID Connect")
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
if YANDEX_OAUTH_CLIENT_ID:
    SOCIALACCOUNT_PROVIDERS["yandex"] = {
        "APPS": [{"client_id": YANDEX_OAUTH_CLIENT_ID, "secret": YANDEX_OAUTH_CLIENT_SECRET}]
    }
if OIDC_CLIENT_ID:
    if not OIDC_PROVIDER_URL:
        raise EnvError(
            "OIDC_CLIENT_ID needs OIDC_PROVIDER_URL: the issuer URL, e.g. https://id.example.com"
        )
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": "oidc",
                "name": OIDC_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                # PKCE: a stolen authorization code is useless without our verifier.
                "settings": {"server_url": OIDC_PROVIDER_URL, "oauth_pkce_enabled": True},
            }
        ]
    }
# A provider's e-mail is taken as verified only by the provider itself; an account with the same
# e-mail is not taken over by a social log-in.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"

ADMIN_USERNAME = env_str("ADMIN_USERNAME", "admin")
ADMIN_EMAIL = env_str("ADMIN_EMAIL", "admin@localhost")
ADMIN_PASSWORD = env_secret("ADMIN_PASSWORD")

# --- Quotas and rate limits ---------------------------------------------------------------------
# Daily limits per user (0: none), counted from the day's answers until midnight in TIME_ZONE; an
# administrator can override them per user.
QUOTA_DAILY_TOKENS = env_int("QUOTA_DAILY_TOKENS", 0, minimum=0)
QUOTA_DAILY_MESSAGES = env_int("QUOTA_DAILY_MESSAGES", 0, minimum=0)
# Requests per user per minute (0: no limit), counted in the cache (Redis when REDIS_URL is set,
# so that every process shares the count).
RATE_LIMIT_CHAT_PER_MINUTE = env_int("RATE_LIMIT_CHAT_PER_MINUTE", 20, minimum=0)
RATE_LIMIT_UPLOAD_PER_MINUTE = env_int("RATE_LIMIT_UPLOAD_PER_MINUTE", 30, minimum=0)
# The vector API: a search embeds its query and scans the indexes; an embed call up to 256 texts.
RATE_LIMIT_SEARCH_PER_MINUTE = env_int("RATE_LIMIT_SEARCH_PER_MINUTE", 60, minimum=0)
RATE_LIMIT_EMBED_PER_MINUTE = env_int("RATE_LIMIT_EMBED_PER_MINUTE", 30, minimum=0)

# --- E-mail: console by default, SMTP when EMAIL_HOST is set ------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "RAGGEN <raggen@localhost>")

# --- Internationalisation ------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_TZ = True

# --- Static and uploaded files -------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", DATA_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Uploaded files: the local media folder, or an S3-compatible store (raggen.storage_url).
STORAGE_URL = env_url("STORAGE_URL", ("s3",))
STORAGES = {
    "default": default_storage_from_url(STORAGE_URL),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
MEDIA_URL = "media/"
INDEX_DIR = env_path("INDEX_DIR", DATA_DIR / "indexes")
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_MB", 50, minimum=1) * 1024 * 1024
# Ingestion: a document in progress whose heartbeat is older than this is taken as abandoned
# (its worker died) and queued again, at most INGEST_MAX_ATTEMPTS times in all.
INGEST_STALE_SECONDS = env_int("INGEST_STALE_SECONDS", 300, minimum=1)
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
INGEST_MAX_PAGES = env_int("INGEST_MAX_PAGES", 5000, minimum=1)
INGEST_SWEEP_SECONDS = env_int("INGEST_SWEEP_SECONDS", 60, minimum=1)
# Reading a file (the readers and the chunker) runs in a child process held within these
# limits: the wall-clock seconds spent waiting for it (and its CPU seconds), and its address
# space. A file that needs more ends failed with a reason that says which limit it hit.
INGEST_PARSE_TIMEOUT = env_int("INGEST_PARSE_TIMEOUT", 300, minimum=1)
INGEST_PARSE_MEMORY_MB = env_int("INGEST_PARSE_MEMORY_MB", 1024, minimum=128)
# Non-file request data Django holds in memory (JSON bodies, form fields): the embedding API's
# largest batch fits; a larger body answers 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Embeddings ----------------------------------------------------------------------------------
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL")  # empty: the bundled all-MiniLM-L6-v2
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 64, minimum=1, maximum=1024)
EMBEDDING_DEVICE = env_choice("EMBEDDING_DEVICE", ("cpu", "cuda"), "cpu")
HYBRID_DENSE_WEIGHT = env_float("HYBRID_DENSE_WEIGHT", 1.0, minimum=0.0)
HYBRID_KEYWORD_WEIGHT = env_float("HYBRID_KEYWORD_WEIGHT", 1.0, minimum=0.0)
# Usage analytics: an answer whose best retrieved passage has a lower cosine to the question found
# "no good context" (listed in the admin, where the knowledge bases are thin).
USAGE_GOOD_CONTEXT_SCORE = env_float("USAGE_GOOD_CONTEXT_SCORE", 0.3, minimum=-1.0)
# Answers over knowledge bases whose best passage covers less than ANSWER_WEAK_PASSAGE of the
# question's keyword weight say the documents do not answer and cite the closest passages, with
# no provider asked (chat.pipeline.weak_context; 0.2 measured, docs/EVALUATION.md).
ANSWER_REFUSE_WEAK = env_bool("ANSWER_REFUSE_WEAK", True)
ANSWER_WEAK_PASSAGE = env_float("ANSWER_WEAK_PASSAGE", 0.2, minimum=0.0)
APPROXIMATE_INDEX_THRESHOLD = env_int("APPROXIMATE_INDEX_THRESHOLD", 200_000, minimum=1)
# FAISS threads for one query's vector search (0: every core). One is the default: a single
# query is memory-bound, and on a busy machine OpenMP threads wait for each other (see
# docs/BENCHMARKS.md, "Chat"). Index builds keep every core.
SEARCH_THREADS = env_int("SEARCH_THREADS", 1, minimum=0)
# Where knowledge bases are indexed and searched (documents.retrieval.backend): "local" keeps
# FAISS and BM25 files per knowledge base under INDEX_DIR; "postgres" keeps vectors (pgvector,
# HNSW) and keywords (full-text search) in the PostgreSQL database of DATABASE_URL.
SEARCH_BACKEND = env_choice("SEARCH_BACKEND", ("local", "postgres"), "local")
# The postgres backend's hnsw.ef_search (raised to a query's candidate count when lower): higher
# finds more of the exact nearest neighbours, slower (docs/EVALUATION.md, "Postgres backend").
PGVECTOR_EF_SEARCH = env_int("PGVECTOR_EF_SEARCH", 100, minimum=1)

# --- Security (see README: "Production") ---------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Default: HTTPS-only cookies once the server is reached by a real host name with DEBUG off; on
# this machine's own names (plain HTTP on loopback, ``make run``) they would not be sent back.
SESSION_COOKIE_SECURE = env_bool(
    "SECURE_COOKIES", not DEBUG and not set(ALLOWED_HOSTS) <= set(LOCAL_HOSTS)
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Content-Security-Policy (django-csp) on every response ------------------------------------
# Scripts, styles, images, fonts and connections (websockets included: CSP3's 'self' covers ws/wss
# of the same host) come from our own origin only; no inline script or style, no plugins, no
# <base>, no framing. Images may also be data: URLs (never remote: an answer cannot leak data
# through an image URL). A response that already carries a CSP header (the original files'
# "sandbox") keeps its own. Forms post to our origin; with a social login configured its
# provider's redirect chain also needs https: targets (Chromium checks form-action on redirects).
_FORM_ACTION = ["'self'", "https:"] if SOCIALACCOUNT_PROVIDERS else ["'self'"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": _FORM_ACTION,
    }
}

# --- Request bodies ------------------------------------------------------------------------------
# The web process (``python -m raggen.server``) refuses a request body larger than this from its
# Content-Length, or a chunked one once it passes this, before buffering it; the ASGI application
# refuses the same under any other server (raggen.bodylimit). The largest upload plus room for
# the multipart form around it. A proxy in front sets the same limit (README: "Production").
REQUEST_BODY_OVERHEAD_BYTES = 1024 * 1024
REQUEST_MAX_BYTES = UPLOAD_MAX_BYTES + REQUEST_BODY_OVERHEAD_BYTES

# --- Honest defaults: passwords, sign-in behind a proxy, metrics ----------------------------------
# Passwords set at sign-up, reset or change, and the first administrator's.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# allauth's rate limits count the client address: behind our proxy, the one the proxy appended to
# X-Forwarded-For (a client cannot forge it); otherwise the connection's own address.
ALLAUTH_TRUSTED_PROXY_COUNT = 1 if BEHIND_TLS_PROXY else 0
# /metrics answers a request carrying "Authorization: Bearer <METRICS_TOKEN>", or, when not behind
# a proxy, one from this machine (loopback); anything else gets 403.
METRICS_TOKEN = env_secret("METRICS_TOKEN")

# --- Logging: a request id on every line; JSON lines with LOG_FORMAT=json ----------------------
LOG_FORMAT = env_choice("LOG_FORMAT", ("text", "json"), "text")
LOG_LEVEL = env_choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "raggen.observability.RequestIdFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Worker ------------------------------------------------------------------------------------
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0, maximum=65535)

# --- LLM providers ---
# Read by providers.registry only. Secrets also come from NAME_FILE. No key: the offline provider
# quotes the retrieved passages, so the app answers out of the box.
DEFAULT_PROVIDER = env_choice(
    "DEFAULT_PROVIDER", ("offline", "yandexgpt", "gigachat", "openai"), "offline"
)
LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 10.0, minimum=0.1)
LLM_READ_TIMEOUT = env_float("LLM_READ_TIMEOUT", 60.0, minimum=0.1)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2, minimum=0, maximum=10)

YANDEX_API_KEY = env_secret("YANDEX_API_KEY")
YANDEX_IAM_TOKEN = env_secret("YANDEX_IAM_TOKEN")
YANDEX_FOLDER_ID = env_str("YANDEX_FOLDER_ID")
YANDEX_BASE_URL = env_url("YANDEX_BASE_URL", ("https", "http"), "https://llm.api.cloud.yandex.net")
YANDEX_MODEL = env_str("YANDEX_MODEL", "yandexgpt-lite")
YANDEX_MODEL_BRANCH = env_str("YANDEX_MODEL_BRANCH", "latest")
YANDEX_TEMPERATURE = env_float("YANDEX_TEMPERATURE", 0.3, minimum=0.0)
YANDEX_MAX_TOKENS = env_int("YANDEX_MAX_TOKENS", 2000, minimum=1)
YANDEX_DATA_LOGGING = env_bool("YANDEX_DATA_LOGGING", False)

GIGACHAT_CREDENTIALS = env_secret("GIGACHAT_CREDENTIALS")
GIGACHAT_SCOPE = env_choice(
    "GIGACHAT_SCOPE",
    ("gigachat_api_pers", "gigachat_api_b2b", "gigachat_api_corp"),
    "gigachat_api_pers",
).upper()
GIGACHAT_AUTH_URL = env_url(
    "GIGACHAT_AUTH_URL", ("https", "http"), "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
)
GIGACHAT_BASE_URL = env_url(
    "GIGACHAT_BASE_URL", ("https", "http"), "https://gigachat.devices.sberbank.ru/api/v1"
)
GIGACHAT_CA_BUNDLE = env_str("GIGACHAT_CA_BUNDLE")
GIGACHAT_VERIFY_SSL = env_bool("GIGACHAT_VERIFY_SSL", True)
GIGACHAT_MODEL = env_str("GIGACHAT_MODEL", "GigaChat-2")
GIGACHAT_TEMPERATURE = env_float("GIGACHAT_TEMPERATURE", 0.3, minimum=0.0)
GIGACHAT_MAX_TOKENS = env_int("GIGACHAT_MAX_TOKENS", 2000, minimum=1)
GIGACHAT_EMBEDDINGS_MODEL = env_str("GIGACHAT_EMBEDDINGS_MODEL", "Embeddings")

OPENAI_BASE_URL = env_url("OPENAI_BASE_URL", ("https", "http"))
OPENAI_API_KEY = env_secret("OPENAI_API_KEY")
# Provider keys and endpoints may also be set in the admin, stored encrypted with this key.
PROVIDER_SECRETS_KEY = env_secret("PROVIDER_SECRETS_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL")
OPENAI_TEMPERATURE = env_float("OPENAI_TEMPERATURE", 0.3, minimum=0.0)
OPENAI_MAX_TOKENS = env_int("OPENAI_MAX_TOKENS", 2000, minimum=1)
