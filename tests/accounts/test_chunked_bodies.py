"""Event batches sent with Transfer-Encoding: chunked and no Content-Length (streaming clients).
gunicorn hands the WSGI app the decoded body; these tests call CSP's WSGI application the same
way, with the body in wsgi.input and no CONTENT_LENGTH."""

import io
from wsgiref.util import setup_testing_defaults

import orjson
import pytest
from django.core.signals import request_started
from django.db import close_old_connections

from accounts.models import UsageEvent
from accounts.services.tokens import api_token_create
from csp.wsgi import application
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: the request runs inside the test's transaction, so it must
    not close the connection when it starts (PostgreSQL: "connection already closed")."""
    request_started.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)


def call(body: bytes, **headers) -> tuple[str, bytes]:
    _, key = api_token_create(name="stream", scopes=["events:write"])
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/events",
        "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "wsgi.input": io.BytesIO(body),
        **headers,
    }
    setup_testing_defaults(environ)
    environ.pop("CONTENT_LENGTH", None)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = status

    content = b"".join(application(environ, start_response))
    return answer["status"], content


def batch(count: int) -> bytes:
    return orjson.dumps(
        {
            "events": [
                {
                    "event_id": f"e-{i}",
                    "account_id": "acme",
                    "event": "login",
                    "timestamp": "2025-06-01T09:30:00Z",
                }
                for i in range(count)
            ]
        }
    )


def test_a_chunked_batch_without_content_length_is_stored():
    AccountFactory(external_id="acme")
    status, content = call(batch(3), HTTP_TRANSFER_ENCODING="chunked")
    assert status.startswith("200"), content
    assert orjson.loads(content)["accepted"] == 3
    assert UsageEvent.objects.count() == 3


def test_a_chunked_body_over_the_limit_is_refused_as_too_large(settings):
    AccountFactory(external_id="acme")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
    status, content = call(
        b" " * (2 * 1024 * 1024 + 10) + batch(1), HTTP_TRANSFER_ENCODING="chunked"
    )
    assert status.startswith("413"), content
    assert not UsageEvent.objects.exists()


def test_without_chunked_encoding_a_missing_length_is_still_an_empty_body():
    AccountFactory(external_id="acme")
    status, _ = call(batch(1))
    assert status.startswith("400")
    assert not UsageEvent.objects.exists()
