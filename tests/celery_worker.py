"""A real Celery worker for tests marked ``celery_worker`` (a pytest plugin; see tests/conftest.py).

The worker is a subprocess (`celery -A csp worker`) consuming REDIS_URL and reading the same test
database as the tests: pytest-django renames the database to ``test_<name>``, so the subprocess
gets a DATABASE_URL naming that database. Data must be committed for the worker to see it, hence
such tests use ``@pytest.mark.django_db(transaction=True)``. One worker serves the whole session
and is stopped before pytest-django drops the test database.

Usage::

    @pytest.mark.celery_worker
    @pytest.mark.django_db(transaction=True)
    def test_the_worker_recomputes_scores():
        result = some_task.delay(...)
        assert result.get(timeout=30) == ...

The marker alone starts the worker and switches this process from eager execution to the broker
for the duration of the test. The module also defines ``tests.db_probe``, a task the worker loads
(`--include`) so the fixture can prove it reads the test database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import shared_task

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60


@shared_task(name="tests.db_probe")
def db_probe(username: str) -> bool:
    """Whether the worker sees a user by that name in its database."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).exists()


def database_url_for(settings_dict: dict) -> str:
    """A DATABASE_URL naming the database Django is connected to now (the test database)."""
    if settings_dict["ENGINE"] != "django.db.backends.postgresql":
        raise pytest.UsageError("tests marked celery_worker need PostgreSQL (set DATABASE_URL)")
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{settings_dict['NAME']}"


def _wait_until_ready(app, hostname: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited early:\n{log_path.read_text()[-4000:]}")
        if app.control.ping(destination=[hostname], timeout=1.0):
            return
    process.terminate()
    log_tail = log_path.read_text()[-4000:]
    raise RuntimeError(f"Celery worker not ready in {STARTUP_SECONDS}s:\n{log_tail}")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """Starts one worker for the session against REDIS_URL and the test database."""
    from django.conf import settings
    from django.db import connection

    from csp.celery import Queue, app

    if not settings.CSP_TEST_REDIS_URL:
        pytest.skip("needs Redis and a Celery worker (REDIS_URL)")
    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    app.control.purge()  # leftovers of an earlier run must not reach this worker
    hostname = f"csp-test-{os.getpid()}@localhost"
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.CSP_TEST_REDIS_URL,
        # The deployed settings, not the test ones (which make tasks eager inside the worker too).
        "DJANGO_SETTINGS_MODULE": "csp.settings",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CONN_MAX_AGE": "0",
        "PYTHONPATH": str(REPO_ROOT),
    }
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    command = [
        sys.executable, "-m", "celery", "-A", "csp", "worker",
        "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle",
        "--hostname", hostname,
        "--queues", ",".join(queue.value for queue in Queue),
        "--include", "tests.celery_worker",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_ready(app, hostname, process, Path(log.name))
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)


@pytest.fixture
def celery_worker(request, celery_worker_process) -> Iterator[subprocess.Popen]:
    """The running worker; during the test, tasks go through Redis instead of running eagerly."""
    from csp.celery import app

    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")):
        pytest.fail("tests using the Celery worker need @pytest.mark.django_db(transaction=True)")
    was_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield celery_worker_process
    finally:
        app.conf.task_always_eager = was_eager


@pytest.fixture(autouse=True)
def _celery_worker_for_marked_tests(request) -> None:
    if request.node.get_closest_marker("celery_worker"):
        request.getfixturevalue("celery_worker")
