"""POST /api/v1/events, item by item against the contract."""

import datetime as dt

import orjson
import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from accounts.models import Account, UsageEvent
from accounts.services.tokens import api_token_revoke
from tests.factories import AccountFactory

URL = "/api/v1/events"


def event(n: int | str = 1, **fields) -> dict:
    item = {
        "event_id": f"e-{n}",
        "account_id": "acme",
        "user_id": "u-1",
        "event": "login",
        "timestamp": "2025-06-01T09:30:00Z",
        "value": 1.5,
        "properties": {"plan": "pro"},
    }
    item.update(fields)
    return {k: v for k, v in item.items() if v is not ...}


def post(client, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.generic("POST", URL, data, content_type=content_type)


@pytest.fixture
def acme(db) -> Account:
    return AccountFactory(external_id="acme")


@pytest.fixture
def client(token_client, acme):
    return token_client("events:write")


def test_valid_events_are_stored_with_their_fields(client, acme):
    response = post(client, {"events": [event(1), event(2, user_id=None, value=None)]})

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    stored = UsageEvent.objects.get(event_id="e-1")
    assert stored.account == acme
    assert (stored.user_id, stored.name, stored.value) == ("u-1", "login", 1.5)
    assert stored.properties == {"plan": "pro"}
    assert stored.occurred_at == dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.UTC)
    assert UsageEvent.objects.get(event_id="e-2").user_id == ""


def test_optional_fields_may_be_left_out(client):
    response = post(client, {"events": [event(1, user_id=..., value=..., properties=...)]})

    assert response.json()["accepted"] == 1
    assert UsageEvent.objects.get().properties == {}


def test_timestamp_without_offset_is_taken_as_utc_and_offsets_are_converted(client):
    post(
        client,
        {
            "events": [
                event(1, timestamp="2025-06-01T23:30:00"),
                event(2, timestamp="2025-06-02T01:30:00+02:00"),
            ]
        },
    )

    assert UsageEvent.objects.get(event_id="e-1").occurred_at == dt.datetime(
        2025, 6, 1, 23, 30, tzinfo=dt.UTC
    )
    assert UsageEvent.objects.get(event_id="e-2").occurred_at == dt.datetime(
        2025, 6, 1, 23, 30, tzinfo=dt.UTC
    )


def test_valid_events_are_stored_even_when_others_are_rejected(client):
    response = post(client, {"events": [event(1), event(2, event=""), event(3)]})

    assert response.json()["accepted"] == 2
    assert response.json()["rejected"] == [
        {"index": 1, "event_id": "e-2", "errors": {"event": ["Must not be blank."]}}
    ]
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"e-1", "e-3"}


def test_resent_event_is_counted_once_as_a_duplicate(client):
    post(client, {"events": [event(1), event(2)]})
    response = post(client, {"events": [event(2), event(3)]})

    assert response.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert UsageEvent.objects.count() == 3


def test_event_repeated_within_a_batch_is_stored_once(client):
    response = post(client, {"events": [event(1), event(1, value=9.0), event(1)]})

    assert response.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert UsageEvent.objects.get().value == 1.5


def test_same_event_id_in_two_accounts_is_two_events(client):
    AccountFactory(external_id="globex")
    response = post(client, {"events": [event(1), event(1, account_id="globex")]})

    assert response.json()["accepted"] == 2


def test_account_receiving_events_gets_last_event_received_at(client, acme):
    other = AccountFactory(external_id="idle")
    before = timezone.now()
    post(client, {"events": [event(1)]})

    acme.refresh_from_db()
    other.refresh_from_db()
    assert acme.last_event_received_at >= before
    assert other.last_event_received_at is None


def test_last_event_received_at_is_written_at_most_once_a_minute(client, acme):
    recent = timezone.now() - dt.timedelta(seconds=20)
    Account.objects.filter(pk=acme.pk).update(last_event_received_at=recent)
    post(client, {"events": [event(1)]})
    acme.refresh_from_db()
    assert acme.last_event_received_at == recent

    stale = timezone.now() - dt.timedelta(minutes=5)
    Account.objects.filter(pk=acme.pk).update(last_event_received_at=stale)
    post(client, {"events": [event(2)]})
    acme.refresh_from_db()
    assert acme.last_event_received_at > stale + dt.timedelta(minutes=4)


def _future(hours: float) -> str:
    return (timezone.now() + dt.timedelta(hours=hours)).isoformat()


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"event_id": ...}, "event_id", "This field is required."),
        ({"event_id": ""}, "event_id", "Must not be blank."),
        ({"event_id": "   "}, "event_id", "Must not be blank."),
        ({"event_id": 7}, "event_id", "Must be a string."),
        ({"event_id": "x" * 256}, "event_id", "Must be at most 255 characters."),
        ({"event_id": "a\x00b"}, "event_id", "Must not contain NUL characters."),
        ({"account_id": ...}, "account_id", "This field is required."),
        ({"account_id": 12}, "account_id", "Must be a string."),
        ({"account_id": "nobody"}, "account_id", "Unknown account."),
        # Once looked up as is: PostgreSQL refused the whole batch's query (a 500).
        ({"account_id": "ac\x00me"}, "account_id", "Must not contain NUL characters."),
        ({"event": ...}, "event", "This field is required."),
        ({"event": ""}, "event", "Must not be blank."),
        ({"event": "x" * 101}, "event", "Must be at most 100 characters."),
        ({"event": ["login"]}, "event", "Must be a string."),
        ({"user_id": 5}, "user_id", "Must be a string."),
        ({"user_id": "   "}, "user_id", "Must not be only whitespace."),
        ({"user_id": "u" * 256}, "user_id", "Must be at most 255 characters."),
        ({"timestamp": ...}, "timestamp", "This field is required."),
        (
            {"timestamp": "yesterday"},
            "timestamp",
            "Must be an ISO 8601 date-time, e.g. 2025-06-01T12:00:00Z.",
        ),
        (
            {"timestamp": 1717230000},
            "timestamp",
            "Must be an ISO 8601 date-time string, e.g. 2025-06-01T12:00:00Z.",
        ),
        ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp", "Must not be before 2000-01-01."),
        ({"timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp", "Is out of range."),
        ({"value": "12"}, "value", "Must be a number."),
        ({"value": True}, "value", "Must be a number."),
        ({"value": {"n": 1}}, "value", "Must be a number."),
        ({"properties": []}, "properties", "Must be an object."),
        ({"properties": "plan=pro"}, "properties", "Must be an object."),
        (
            {"properties": {"blob": "x" * 33 * 1024}},
            "properties",
            "Must be at most 32 KB when serialised.",
        ),
        ({"properties": {"a": "b\x00"}}, "properties", "Must not contain NUL characters."),
    ],
)
def test_invalid_item_is_rejected_with_field_and_reason(client, fields, field, reason):
    response = post(client, {"events": [event(1, **fields), event(2)]})

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert len(body["rejected"]) == 1
    assert body["rejected"][0]["index"] == 0
    assert body["rejected"][0]["errors"] == {field: [reason]}
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["e-2"]


def test_timestamp_more_than_an_hour_ahead_is_rejected_but_just_under_is_not(client):
    response = post(
        client, {"events": [event(1, timestamp=_future(1.1)), event(2, timestamp=_future(0.9))]}
    )

    assert response.json()["rejected"] == [
        {
            "index": 0,
            "event_id": "e-1",
            "errors": {"timestamp": ["Must not be more than 1 hour in the future."]},
        }
    ]
    assert response.json()["accepted"] == 1


def test_properties_of_exactly_32_kb_are_accepted(client):
    blob = "x" * (32 * 1024 - len('{"blob":""}'))
    response = post(client, {"events": [event(1, properties={"blob": blob})]})

    assert response.json()["accepted"] == 1


def test_properties_nested_too_deeply_to_store_are_rejected_not_a_crash(client):
    nested = b'{"a":' * 400 + b"{}" + b"}" * 400
    body = b'{"events": [' + orjson.dumps(event(1))[:-1] + b', "properties": ' + nested + b"}]}"
    response = post(client, body)

    assert response.status_code == 200
    assert list(response.json()["rejected"][0]["errors"]) == ["properties"]


def test_item_that_is_not_an_object_is_rejected(client):
    response = post(client, {"events": ["e-1", None, event(3)]})

    assert response.json()["rejected"] == [
        {"index": 0, "event_id": None, "errors": {"non_field_errors": ["Must be an object."]}},
        {"index": 1, "event_id": None, "errors": {"non_field_errors": ["Must be an object."]}},
    ]
    assert response.json()["accepted"] == 1


def test_item_with_several_problems_reports_each_field(client):
    response = post(client, {"events": [{"event_id": "", "value": "x"}]})

    errors = response.json()["rejected"][0]["errors"]
    assert set(errors) == {"event_id", "account_id", "event", "timestamp", "value"}


def test_empty_batch_is_accepted(client):
    response = post(client, {"events": []})

    assert response.json() == {"accepted": 0, "duplicates": 0, "rejected": []}


def test_more_than_1000_events_is_refused_as_too_large(client):
    response = post(client, {"events": [event(i) for i in range(1001)]})

    assert response.status_code == 413
    assert UsageEvent.objects.count() == 0


def test_exactly_1000_events_are_accepted(client):
    response = post(client, {"events": [event(i) for i in range(1000)]})

    assert response.status_code == 200
    assert response.json()["accepted"] == 1000


def test_body_over_1_mb_is_refused_as_too_large(client):
    blob = "x" * 30_000
    body = {"events": [event(i, properties={"blob": blob}) for i in range(40)]}
    response = post(client, body)

    assert response.status_code == 413
    assert UsageEvent.objects.count() == 0


def test_declared_content_length_over_1_mb_is_refused_before_reading(client):
    response = client.generic(
        "POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH=str(2 * 1024 * 1024)
    )

    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"events": [NaN]}',
        b'{"events": [{"value": Infinity}]}',
        b'{"events": [1e999]}',
        b"\xff\xfe\x00junk",
        b'{"events": ["\xc3\x28"]}',
        b'"\\ud800"',
        b"[" * 5000 + b"]" * 5000,
        b"{'events': []}",
    ],
)
def test_malformed_json_is_a_400(client, body):
    response = post(client, body)

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "body",
    [[], [{"event_id": "e"}], {"event": []}, {"events": {"e-1": {}}}, {"events": None}, "x", 3],
)
def test_body_of_the_wrong_shape_is_a_400(client, body):
    response = post(client, body)

    assert response.status_code == 400
    assert response.json()["errors"] == {"events": ["Must be a list of events."]}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_body_that_is_not_json_by_content_type_is_a_415(client, content_type):
    response = post(client, {"events": [event(1)]}, content_type=content_type)

    assert response.status_code == 415
    assert UsageEvent.objects.count() == 0


def test_json_content_type_with_charset_is_accepted(client):
    response = post(client, {"events": [event(1)]}, "application/json; charset=utf-8")

    assert response.status_code == 200


def test_deeply_nested_junk_in_items_is_rejected_per_item_not_a_crash(client):
    junk = b"[" * 900 + b"]" * 900
    item = (
        b'{"event_id": %s, "account_id": "acme", "event": "login", "timestamp": %s, '
        b'"value": %s, "properties": %s}' % (junk, junk, junk, junk)
    )
    response = post(client, b'{"events": [' + item + b", " + orjson.dumps(event(2)) + b"]}")

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert set(response.json()["rejected"][0]["errors"]) == {
        "event_id",
        "timestamp",
        "value",
        "properties",
    }


def test_request_without_token_is_a_401(acme, db):
    from rest_framework.test import APIClient

    response = post(APIClient(), {"events": [event(1)]})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_request_with_unknown_token_is_a_401(acme, db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer csp_not-a-real-token")

    assert post(client, {"events": [event(1)]}).status_code == 401


def test_request_with_revoked_token_is_a_401(acme, db):
    from rest_framework.test import APIClient

    from accounts.services.tokens import api_token_create

    token, key = api_token_create(name="old", scopes=["events:write"])
    api_token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    assert post(client, {"events": [event(1)]}).status_code == 401
    assert UsageEvent.objects.count() == 0


def test_token_without_events_write_scope_is_a_403(token_client, acme):
    client = token_client("read", "accounts:write")

    response = post(client, {"events": [event(1)]})

    assert response.status_code == 403
    assert "events:write" in response.json()["detail"]
    assert UsageEvent.objects.count() == 0


@override_settings(CSP_API_RATE_PER_MINUTE=2)
def test_requests_over_the_rate_limit_get_429_with_retry_after(client):
    cache.clear()
    try:
        codes = [post(client, {"events": [event(i)]}).status_code for i in range(2)]
        response = post(client, {"events": [event(9)]})
    finally:
        cache.clear()

    assert codes == [200, 200]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert UsageEvent.objects.count() == 2
