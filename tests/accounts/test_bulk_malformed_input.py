"""Bulk upserts: inputs that once reached the database or the response unchecked (500s)."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Contact, SurveyResponse
from accounts.services import upserts
from tests.accounts.bulk_helpers import errors_of, post_raw, response, send, subscription
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "item, field",
    [
        ({"external_id": "a\u0000", "name": "A"}, "external_id"),
        ({"external_id": "a", "name": "Ac\u0000me"}, "name"),
        ({"external_id": "a", "name": "A", "owner": "ann\u0000"}, "owner"),
        ({"external_id": "a", "name": "A", "attributes": {"tier\u0000": "gold"}}, "attributes"),
        ({"external_id": "a", "name": "A", "attributes": {"tier": "go\u0000ld"}}, "attributes"),
    ],
)
def test_a_nul_character_is_rejected_per_item_not_a_crash(writer, item, field):
    body = send(writer, "accounts", [item, {"external_id": "ok", "name": "Fine"}])
    assert errors_of(body, 0)[field] == [
        "Keys and values must not contain NUL characters."
        if field == "attributes"
        else "Must not contain NUL characters."
    ]
    assert list(Account.objects.values_list("external_id", flat=True)) == ["ok"]


def test_a_nul_character_in_a_reference_is_rejected_not_a_crash(writer):
    AccountFactory(external_id="acme")
    body = send(writer, "contacts", [{"account_id": "ac\u0000me", "email": "ann@acme.com"}])
    assert errors_of(body, 0) == {"account_id": ["Must not contain NUL characters."]}
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "body", ['{"items": [{"external_id": "\\ud800", "name": "A"}]}', '{"items": [{"\\udfff": 1}]}']
)
def test_a_lone_surrogate_is_a_400_naming_where_it_is(writer, body):
    response = post_raw(writer, "accounts", body)
    assert response.status_code == 400
    assert list(response.json()["errors"]) in (["items[0].external_id"], ["items[0]"])
    assert not Account.objects.exists()


def test_json_nested_too_deeply_for_python_is_a_400_not_a_crash(writer):
    response = post_raw(writer, "accounts", '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_an_email_longer_than_the_column_is_rejected_not_a_crash(writer):
    AccountFactory(external_id="acme")
    email = "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".com"  # 260 characters, well formed
    body = send(writer, "contacts", [{"account_id": "acme", "email": email}])
    assert errors_of(body, 0) == {"email": ["Must be at most 254 characters."]}


def test_a_moment_that_is_before_year_1_in_utc_is_rejected_not_a_crash(writer):
    AccountFactory(external_id="acme")
    moment = "0001-01-01T00:00:00+01:00"
    body = send(writer, "subscriptions", [subscription(start_date=moment)])
    assert "1900-01-01" in errors_of(body, 0)["start_date"][0]
    body = send(writer, "survey-responses", [response(responded_at=moment)])
    assert "1900-01-01" in errors_of(body, 0)["responded_at"][0]


def test_an_offset_postgresql_cannot_store_is_converted_to_utc(writer):
    AccountFactory(external_id="acme")
    body = send(writer, "survey-responses", [response(responded_at="2025-06-01T23:30:00+23:59")])
    assert body["created"] == 1
    stored = SurveyResponse.objects.get().responded_at
    assert stored == dt.datetime(2025, 5, 31, 23, 31, tzinfo=dt.UTC)


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "2200-01-01", "9999-12-31"])
def test_dates_the_health_recompute_cannot_read_are_rejected(writer, day):
    # pandas, which the recompute's features use, holds 1677 to 2262 only.
    AccountFactory(external_id="acme")
    body = send(
        writer,
        "subscriptions",
        [subscription(start_date=day), subscription(external_id="s2", renewal_date=day)],
    )
    assert errors_of(body, 0) == {"start_date": ["Must be between 1900-01-01 and 2199-12-31."]}
    assert set(errors_of(body, 1)) == {"renewal_date"}
    body = send(
        writer, "contacts", [{"account_id": "acme", "email": "a@b.co", "last_seen_at": day}]
    )
    assert set(errors_of(body, 0)) == {"last_seen_at"}


def test_a_currency_of_non_ascii_letters_is_rejected(writer):
    AccountFactory(external_id="acme")
    body = send(writer, "subscriptions", [subscription(currency="üüü")])
    assert set(errors_of(body, 0)) == {"currency"}


def test_subscriptions_adding_up_past_what_the_account_holds_are_rejected_others_stored(writer):
    # Each MRR fits its own column; their sum did not fit Account.mrr (PostgreSQL refused the
    # write, SQLite stored a number no read of the account could load again).
    AccountFactory(external_id="acme")
    AccountFactory(external_id="globex")
    send(writer, "subscriptions", [subscription(mrr="999999999999.99")])
    body = send(
        writer,
        "subscriptions",
        [
            subscription(external_id="s2", mrr="1"),
            subscription(external_id="s3", account_id="globex", mrr="800"),
        ],
    )
    assert errors_of(body, 0) == {"mrr": [upserts.MRR_OVERFLOW]}
    assert body["created"] == 1
    assert Account.objects.get(external_id="acme").mrr == Decimal("999999999999.99")
    assert Account.objects.get(external_id="globex").mrr == Decimal("800.00")


def test_a_content_length_that_is_not_a_number_is_400_not_a_crash(writer):
    response = writer.post(
        "/api/v1/accounts/bulk",
        data='{"items": []}',
        content_type="application/json",
        CONTENT_LENGTH="1e3",
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]
