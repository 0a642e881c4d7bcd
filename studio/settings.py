"""The studio's only settings module, read from the environment.

Every value has a default that suits the embedded run (`make run`: SQLite and an embedded Redis
under var/); the multi-machine run (compose.yaml) sets the same variables. A variable with a
value that cannot be used stops start-up with a message naming it, rather than running with a
silently different configuration.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff

from builds.engine.limits import LimitSettingError as _LimitSettingError
from builds.engine.limits import read_limits as _read_build_limits
from builds.takehome.names import PushRegistry
from builds.takehome.names import parse_push_registry as _parse_push_registry

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    # An empty value counts as unset, so `FOO= make run` falls back to the default.
    value = os.environ.get(name, "").strip()
    return value or None


def envstr(name: str, default: str) -> str:
    return _raw(name) or default


def envbool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a yes/no value: use true or false")


def envint(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}={number} is out of range ({minimum}..{maximum})")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envurl(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = envstr(name, default)
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ImproperlyConfigured(f"{name}={value!r} must start with one of {allowed}")
    return value


def load_or_create_secret(path: Path) -> str:
    """The secret kept at `path`, made on first use. Several processes may start at once (web and
    worker), so the file appears atomically and whoever comes second reads the winner's."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink()
    return path.read_text().strip()


# Where the embedded run keeps its state: the secret key, the SQLite file, Redis's files, the store.
VAR_DIR = Path(envstr("STUDIO_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = envbool("DEBUG", False)
SECRET_KEY = _raw("SECRET_KEY") or load_or_create_secret(VAR_DIR / "secret_key")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

# The layer store (images, layers, the cache index); the engine reads the same variable.
STUDIO_DATA_DIR = Path(envstr("STUDIO_DATA_DIR", str(VAR_DIR / "store"))).resolve()

# `make run` starts its own redis-server on this port unless REDIS_URL points elsewhere; a port
# well away from Redis's usual 6379, so a Redis the machine already runs is left alone.
EMBEDDED_REDIS_PORT = envint("STUDIO_REDIS_PORT", 6390, minimum=1, maximum=65535)
REDIS_URL = envurl(
    "REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0", schemes=("redis", "rediss", "unix")
)

# Workers on several hosts share one cache: its index in this Redis, its layers in this registry
# repository ("host:5000/studio-cache"), each worker's STUDIO_DATA_DIR a local cache of both.
# Both or neither; neither: each store keeps its own index (one host, or one shared volume).
CACHE_INDEX_URL = (envurl("STUDIO_CACHE_INDEX", "", schemes=("redis", "rediss", "unix"))
                   if _raw("STUDIO_CACHE_INDEX") else "")
CACHE_REGISTRY = envstr("STUDIO_CACHE_REGISTRY", "")
if bool(CACHE_INDEX_URL) != bool(CACHE_REGISTRY):
    raise ImproperlyConfigured(
        "STUDIO_CACHE_INDEX and STUDIO_CACHE_REGISTRY go together: the shared index names layers "
        "that only the registry can give to another host"
    )
# A worker's store as a cache: past this many bytes of layers, its least recently used ones go
# (builds/engine/store/evict.py), pulled again from the registry when needed. 0: no limit.
STORE_MAX_BYTES = envint("STUDIO_STORE_MAX_BYTES", 0, minimum=0)

# Where the studio page pushes images: "host[:port]/prefix". People choose only the repository
# under the prefix and a tag, never the host. Unset: the page offers no Push. Logins for it come
# from the engine's registry settings (STUDIO_REGISTRY_AUTH_FILE), never from a person.
def _push_registry() -> PushRegistry | None:
    value = _raw("STUDIO_PUSH_REGISTRY")
    if value is None:
        return None
    try:
        return _parse_push_registry(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"STUDIO_PUSH_REGISTRY={exc}") from None


PUSH_REGISTRY = _push_registry()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "studio",
    "studio.projects",
    "builds",
    "builds.takehome",
    "builds.containers",
    "studio.classrooms",
    "csp",
    "axes",
]

MIDDLEWARE = [
    # Outermost, so that it sees every error answer under /api/ and makes it JSON.
    "studio.api.JsonErrors",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"

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


def _database(url: str) -> dict[str, object]:
    try:
        # No persistent connections: under ASGI each request runs in its own thread, so a kept
        # connection would never be reused, only left open (Django's own advice).
        config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=0))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} cannot be used: {exc}") from None
    if config["ENGINE"] == "django.db.backends.postgresql":
        # /healthz and the worker should hear "unreachable" in seconds, not after TCP gives up.
        config["OPTIONS"] = {"connect_timeout": 5}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The web server, the worker and the command line share one SQLite file: WAL lets readers
        # run beside a writer, and IMMEDIATE transactions wait for the lock instead of failing.
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        if not _raw("DATABASE_URL"):
            VAR_DIR.mkdir(parents=True, exist_ok=True)
    return config


DATABASES = {"default": _database(envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'studio.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "studio.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Guessing passwords (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from
# one address, logging in as it from there is refused (429) for LOGIN_COOLOFF_MINUTES, even with
# the right password. Counted per username and address together, so a stranger cannot lock a
# person out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("STUDIO_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("STUDIO_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_HTTP_RESPONSE_CODE = 429
# uvicorn already puts a proxy's client address (trusted from loopback only) in REMOTE_ADDR.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Behind HTTPS (a proxy that terminates TLS), cookies should travel over it alone and browsers be
# told to use nothing else: off by default, since `make run` serves plain HTTP on loopback.
SESSION_COOKIE_SECURE = envbool("STUDIO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = envint("STUDIO_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("STUDIO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("STUDIO_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = envbool("STUDIO_SSL_REDIRECT", False)
# A TLS-terminating proxy says the request came over HTTPS in this header (e.g. X-Forwarded-Proto).
_proto_header = _raw("STUDIO_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proto_header.upper().replace("-", "_"), "https") if _proto_header else None
)
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy (django-csp): scripts, styles and everything else from the studio's own
# origin only, no inline script, no plugins, no framing; the pages' sockets go to the same host.
# The editor's own <style> elements carry the page's nonce (a page that reads request.csp_nonce).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves the apps' static files straight from where they live, so neither the embedded
# run nor the image needs a collectstatic step.
WHITENOISE_USE_FINDERS = True
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.is_dir() else []

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Pooled connections outlive a Redis restart; without retries the first command on each
        # stale one fails (a websocket refused, an event not forwarded) before it reconnects.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "retry": AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 3)}]
        },
    },
}

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task is acknowledged only once it has run, so a worker that dies mid-build gives the build back
# to the queue; the guarded status update in the task keeps a redelivered build from running twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Builds are long and uneven: a worker takes one at a time instead of hoarding queued ones.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers an unacknowledged task after this long, so it must outlast the longest build.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 60 * 60}
CELERY_TASK_IGNORE_RESULT = True
CELERY_IMPORTS = ["studio.ping", "builds.imagelab", "builds.imagebytes", "builds.containers.tasks"]
# A build keeps running through a broker outage (its events are stored in the database either way);
# stopping it would throw away work only to run it again. Celery's default today, spelled out
# because its next major version means to change it.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# Builds over the web: what one person may ask of the workers, and how long a build may stay silent.
BUILD_RATE_PER_MINUTE = envint("STUDIO_BUILD_RATE_PER_MINUTE", 30, minimum=1)
BUILD_QUEUE_PER_USER = envint("STUDIO_BUILD_QUEUE_PER_USER", 10, minimum=1)
# A running build touches its heartbeat this often; one silent for BUILD_STALE_AFTER_S had its
# worker die under it and is marked failed.
BUILD_HEARTBEAT_S = envint("STUDIO_BUILD_HEARTBEAT_S", 3, minimum=1)
BUILD_STALE_AFTER_S = envint("STUDIO_BUILD_STALE_AFTER_S", 30, minimum=2)
# A queued build whose task message was lost (a Redis that restarted empty) is sent again after this.
BUILD_REQUEUE_AFTER_S = envint("STUDIO_BUILD_REQUEUE_AFTER_S", 300, minimum=10)
# Predictions and lint runs one person may ask for a minute, each (the page asks as they type).
EDITOR_RATE_PER_MINUTE = envint("STUDIO_EDITOR_RATE_PER_MINUTE", 120, minimum=1)
# Every build's limits (STUDIO_BUILD_STEP_TIMEOUT_S, _MEMORY_MB, _DISK_MB, _DOCKERFILE_KB, ...),
# read by the engine's own reader, which `manage.py build` uses too.
try:
    BUILD_LIMITS = _read_build_limits()
except _LimitSettingError as exc:
    raise ImproperlyConfigured(exc.message) from None
# The longest a whole build may take, enforced from outside it: the worker's pool kills the
# process running a build that outlasts it (and starts a fresh one), and the build fails at once.
# By default six steps' worth of the step limit (an hour).
BUILD_TIME_LIMIT_S = envint("STUDIO_BUILD_TIME_LIMIT_S", int(6 * BUILD_LIMITS.timeout_s), minimum=1)
# Containers run from the page (the Run button): one running or queued per person, this many
# started a minute, each stopped after CONTAINER_TIMEOUT_S (and every other build limit: memory,
# processes, disk, no network), and at most CONTAINER_KEEP_PER_USER writable layers kept at once.
CONTAINER_TIMEOUT_S = envint("STUDIO_CONTAINER_TIMEOUT_S", 60, minimum=1)
CONTAINER_RATE_PER_MINUTE = envint("STUDIO_CONTAINER_RATE_PER_MINUTE", 10, minimum=1)
CONTAINER_KEEP_PER_USER = envint("STUDIO_CONTAINER_KEEP_PER_USER", 3, minimum=1)
# Image downloads (Download for docker load) one person, or one share link, may have streaming
# at once from a web process: each holds a thread and the disk while it runs.
DOWNLOADS_PER_PERSON = envint("STUDIO_DOWNLOADS_PER_PERSON", 2, minimum=1)

# How long BuildKit's parser may take over one Dockerfile; it runs in a process of its own, killed
# when it takes longer. Read by the engine from the environment; checked here so that a bad value
# stops the studio at start-up.
PARSE_TIMEOUT_S = envint("STUDIO_PARSE_TIMEOUT_S", 10, minimum=1)

# A project's files: how many, how big, how deep. An upload (a tar or zip of the context, or any
# request body) may be no larger than UPLOAD_MAX_BYTES.
PROJECT_MAX_FILES = envint("STUDIO_PROJECT_MAX_FILES", 1000, minimum=1)
PROJECT_MAX_BYTES = envint("STUDIO_PROJECT_MAX_BYTES", 20 << 20, minimum=1024)
PROJECT_FILE_MAX_BYTES = envint("STUDIO_PROJECT_FILE_MAX_BYTES", 5 << 20, minimum=1024)
PROJECT_PATH_MAX_DEPTH = envint("STUDIO_PROJECT_PATH_MAX_DEPTH", 16, minimum=1)
PROJECTS_PER_USER = envint("STUDIO_PROJECTS_PER_USER", 200, minimum=1)
UPLOAD_MAX_BYTES = envint("STUDIO_UPLOAD_MAX_BYTES", 25 << 20, minimum=1024)
# A file's content travels base64-encoded in JSON, a third larger than the file.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, PROJECT_FILE_MAX_BYTES * 3 // 2 + 65536)
CSRF_FAILURE_VIEW = "studio.api.csrf_failure"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO").upper()},
}
