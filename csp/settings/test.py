"""Test settings: SQLite in memory unless DATABASE_URL names a real server (CI's second pass)."""

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = ":memory:"
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
    DATABASES["default"]["OPTIONS"].pop("init_command", None)
DATABASES["default"]["CONN_MAX_AGE"] = 0

# Unit tests run Celery tasks in-process; tests marked celery_worker start a real worker on Redis.
CELERY_TASK_ALWAYS_EAGER = True
CSP_API_RATE_PER_MINUTE = 100_000
CSP_TEST_REDIS_URL = REDIS_URL
