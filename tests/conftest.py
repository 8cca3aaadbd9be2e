import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services.tokens import api_token_create

pytest_plugins = ["tests.celery_worker"]


def pytest_collection_modifyitems(config, items):
    """Tests marked postgres run only when DATABASE_URL names a PostgreSQL server."""
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL; `make test` does)")
    skip_worker = pytest.mark.skip(reason="needs Redis and a Celery worker (REDIS_URL)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "celery_worker" in item.keywords and not settings.CSP_TEST_REDIS_URL:
            item.add_marker(skip_worker)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit windows live in the cache; each test starts with none used. Only the in-process
    cache is cleared: Redis is shared with the Celery broker, and PostgreSQL never reuses ids."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()
    yield


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def token_client(db):
    """Returns a function making an APIClient that sends a bearer token with the given scopes."""

    def make(*scopes: str) -> APIClient:
        _, key = api_token_create(name="test", scopes=list(scopes or ["read"]))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return make
