import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection
from rest_framework.test import APIClient

from accounts.models import Account, Contact, Subscription, SurveyResponse
from accounts.services import upserts
from accounts.services.tokens import api_token_create, api_token_revoke
from tests.factories import AccountFactory, ContactFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(token_client):
    return token_client("accounts:write")


def send(client, kind: str, items, status: int = 200) -> dict:
    response = client.post(f"/api/v1/{kind}/bulk", {"items": items}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def errors_of(body: dict, index: int) -> dict:
    return next(r["errors"] for r in body["rejected"] if r["index"] == index)


# Envelope, size and access ------------------------------------------------------------------


def test_bare_list_instead_of_an_items_object_is_400_naming_items(writer):
    response = writer.post("/api/v1/accounts/bulk", [{"external_id": "a"}], format="json")
    assert response.status_code == 400
    assert "items" in response.json()["errors"]


def test_malformed_json_is_400(writer):
    response = writer.post(
        "/api/v1/accounts/bulk", data='{"items": [', content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_more_than_1000_items_is_413_and_stores_nothing(writer):
    items = [{"external_id": f"a{i}", "name": "x"} for i in range(1001)]
    body = send(writer, "accounts", items, status=413)
    assert "1000" in body["detail"]
    assert not Account.objects.exists()


def test_exactly_1000_items_are_accepted(writer):
    items = [{"external_id": f"a{i}", "name": f"Customer {i}"} for i in range(1000)]
    assert send(writer, "accounts", items)["created"] == 1000


def test_call_without_a_token_is_401():
    response = APIClient().post("/api/v1/accounts/bulk", {"items": []}, format="json")
    assert response.status_code == 401


def test_token_without_accounts_write_scope_is_403(token_client):
    response = token_client("read", "events:write").post(
        "/api/v1/accounts/bulk", {"items": []}, format="json"
    )
    assert response.status_code == 403
    assert "accounts:write" in response.json()["detail"]


def test_revoked_token_is_401():
    token, key = api_token_create(name="crm", scopes=["accounts:write"])
    api_token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.post("/api/v1/accounts/bulk", {"items": []}, format="json").status_code == 401


def test_logged_in_csm_cannot_bulk_write(client):
    client.force_login(UserFactory())
    response = client.post(
        "/api/v1/accounts/bulk", json.dumps({"items": []}), content_type="application/json"
    )
    assert response.status_code == 403


def test_rate_limit_answers_429_with_retry_after(writer, settings):
    cache.clear()  # token ids repeat between tests; earlier tests' counts must not leak in
    settings.CSP_API_RATE_PER_MINUTE = 1
    send(writer, "accounts", [])
    response = writer.post("/api/v1/accounts/bulk", {"items": []}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


# Accounts ------------------------------------------------------------------------------------


def test_new_accounts_are_created_and_a_resend_updates_without_duplicating(writer):
    items = [{"external_id": "a1", "name": "Acme"}, {"external_id": 42, "name": "Globex"}]
    assert send(writer, "accounts", items) == {"created": 2, "updated": 0, "rejected": []}
    assert send(writer, "accounts", items) == {"created": 0, "updated": 2, "rejected": []}
    assert sorted(Account.objects.values_list("external_id", flat=True)) == ["42", "a1"]


def test_update_changes_only_the_fields_sent(writer):
    send(writer, "accounts", [{"external_id": "a1", "name": "Acme", "segment": "smb"}])
    send(writer, "accounts", [{"external_id": "a1", "segment": "enterprise"}])
    account = Account.objects.get(external_id="a1")
    assert (account.name, account.segment) == ("Acme", "enterprise")


def test_new_account_without_name_is_rejected_but_the_others_are_stored(writer):
    body = send(writer, "accounts", [{"external_id": "a1"}, {"external_id": "a2", "name": "B"}])
    assert body["created"] == 1
    assert body["rejected"] == [
        {"index": 0, "external_id": "a1", "errors": {"name": [upserts.REQUIRED]}}
    ]


def test_account_item_errors_name_each_field(writer):
    body = send(
        writer,
        "accounts",
        [
            {"name": "No id"},
            {"external_id": "a2", "name": "", "lifecycle_stage": "happy", "segment": "x" * 101},
            {"external_id": "a3", "name": "C", "colour": "red"},
            "not an object",
        ],
    )
    assert errors_of(body, 0) == {"external_id": ["This field is required."]}
    assert set(errors_of(body, 1)) == {"name", "lifecycle_stage", "segment"}
    assert "onboarding" in errors_of(body, 1)["lifecycle_stage"][0]
    assert "Unknown field" in errors_of(body, 2)["colour"][0]
    assert "non_field_errors" in errors_of(body, 3)
    assert body["created"] == 0


def test_same_external_id_twice_in_one_request_rejects_the_second(writer):
    body = send(
        writer,
        "accounts",
        [
            {"external_id": "a1", "name": "First"},
            {"external_id": "a1", "name": "Second"},
        ],
    )
    assert body["created"] == 1
    assert errors_of(body, 1) == {"external_id": ["Duplicates item 0 of this request."]}
    assert Account.objects.get().name == "First"


def test_owner_is_found_by_username_or_email_and_unknown_owner_is_rejected(writer):
    alice = UserFactory(username="alice", email="Alice@Example.com")
    bob = UserFactory(username="bob")
    UserFactory(username="gone", is_active=False)
    body = send(
        writer,
        "accounts",
        [
            {"external_id": "a1", "name": "A", "owner": "alice@example.com"},
            {"external_id": "a2", "name": "B", "owner": "bob"},
            {"external_id": "a3", "name": "C", "owner": "nobody"},
            {"external_id": "a4", "name": "D", "owner": "gone"},
        ],
    )
    assert body["created"] == 2
    assert "nobody" in errors_of(body, 2)["owner"][0]
    assert "deactivated" in errors_of(body, 3)["owner"][0]
    owners = dict(Account.objects.values_list("external_id", "owner"))
    assert owners == {"a1": alice.pk, "a2": bob.pk}
    send(writer, "accounts", [{"external_id": "a1", "owner": None}])
    assert Account.objects.get(external_id="a1").owner is None


def test_attributes_replace_the_stored_object_and_accept_only_flat_values(writer):
    send(
        writer,
        "accounts",
        [{"external_id": "a1", "name": "A", "attributes": {"plan": "x", "n": 1}}],
    )
    body = send(
        writer,
        "accounts",
        [
            {"external_id": "a1", "attributes": {"seats": 12.5, "vip": True}},
            {"external_id": "a2", "name": "B", "attributes": {"nested": {"x": 1}, "ok": 1}},
            {"external_id": "a3", "name": "C", "attributes": ["x"]},
        ],
    )
    assert Account.objects.get(external_id="a1").attributes == {"seats": 12.5, "vip": True}
    assert "nested" in errors_of(body, 1)["attributes"][0]
    assert "attributes" in errors_of(body, 2)


def test_bulk_write_takes_a_constant_number_of_queries(writer, django_assert_max_num_queries):
    send(writer, "accounts", [{"external_id": f"a{i}", "name": "x"} for i in range(50)])
    items = [{"external_id": f"a{i}", "name": f"renamed {i}"} for i in range(200)]
    with django_assert_max_num_queries(14):
        body = send(writer, "accounts", items)
    assert (body["created"], body["updated"]) == (150, 50)


def test_unique_conflict_from_a_concurrent_writer_is_retried_not_a_500(writer, monkeypatch):
    """The unique index refuses our insert when another request inserted the same new key after
    our lookup; the service runs again and answers normally."""
    original, calls = upserts._Batch.save, []

    def refused_once(self, model):
        calls.append(model)
        if len(calls) == 1:
            raise IntegrityError("duplicate key value violates unique constraint")
        return original(self, model)

    monkeypatch.setattr(upserts._Batch, "save", refused_once)
    assert send(writer, "accounts", [{"external_id": "a1", "name": "A"}])["created"] == 1
    assert len(calls) == 2 and Account.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_of_the_same_new_account_store_it_once():
    barrier, results, failures = threading.Barrier(2), [], []
    original = upserts._Batch.save

    def save_together(self, model):
        if not getattr(threading.current_thread(), "met", False):
            threading.current_thread().met = True
            barrier.wait(timeout=10)  # both requests looked up and found nothing
        return original(self, model)

    def run():
        try:
            results.append(upserts.accounts_upsert(items=[{"external_id": "same", "name": "X"}]))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            failures.append(exc)
        finally:
            connection.close()

    upserts._Batch.save = save_together
    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        upserts._Batch.save = original
    assert failures == []
    assert sorted((r.created, r.updated) for r in results) == [(0, 1), (1, 0)]
    assert Account.objects.filter(external_id="same").count() == 1


# Contacts ------------------------------------------------------------------------------------


def test_contacts_are_keyed_by_external_id_or_else_by_account_and_email(writer):
    AccountFactory(external_id="acme")
    items = [
        {"account_id": "acme", "external_id": "c1", "email": "ann@acme.com", "name": "Ann"},
        {"account_id": "acme", "email": "Bo@Acme.com", "name": "Bo", "role": "champion"},
    ]
    assert send(writer, "contacts", items)["created"] == 2
    items[1]["title"] = "CFO"
    assert send(writer, "contacts", items) == {"created": 0, "updated": 2, "rejected": []}
    bo = Contact.objects.get(email="bo@acme.com")
    assert (bo.role, bo.title, bo.external_id) == ("champion", "CFO", None)


def test_contact_known_by_email_is_adopted_by_its_external_id(writer):
    account = AccountFactory(external_id="acme")
    ContactFactory(account=account, external_id=None, email="ann@acme.com")
    body = send(
        writer, "contacts", [{"account_id": "acme", "external_id": "c9", "email": "ann@acme.com"}]
    )
    assert body["updated"] == 1
    assert Contact.objects.get().external_id == "c9"


def test_contact_rejections_name_the_field(writer):
    account = AccountFactory(external_id="acme")
    ContactFactory(account=account, external_id="c1", email="ann@acme.com")
    body = send(
        writer,
        "contacts",
        [
            {"account_id": "nope", "email": "x@y.com"},
            {"account_id": "acme", "name": "No key"},
            {"account_id": "acme", "email": "not-an-email"},
            {"account_id": "acme", "external_id": "c2", "email": "ann@acme.com"},
            {
                "account_id": "acme",
                "email": "z@acme.com",
                "role": "boss",
                "last_seen_at": "yesterday",
            },
            {"email": "q@acme.com"},
        ],
    )
    assert "nope" in errors_of(body, 0)["account_id"][0]
    assert "email" in errors_of(body, 1)["external_id"][0]
    assert "email" in errors_of(body, 2)
    assert "Another contact" in errors_of(body, 3)["email"][0]
    assert set(errors_of(body, 4)) == {"role", "last_seen_at"}
    assert errors_of(body, 5) == {"account_id": ["This field is required."]}
    assert Contact.objects.count() == 1


# Subscriptions -------------------------------------------------------------------------------


def subscription(**fields) -> dict:
    return {
        "external_id": "s1",
        "account_id": "acme",
        "plan": "pro",
        "mrr": "500",
        "start_date": "2025-01-01",
        **fields,
    }


def test_subscription_write_refreshes_the_accounts_revenue_facts(writer):
    AccountFactory(external_id="acme")
    send(writer, "subscriptions", [subscription(quantity=20, currency="eur")])
    account = Account.objects.get()
    assert (account.status, account.mrr, account.customer_since) == (
        "active",
        Decimal("500.00"),
        dt.date(2025, 1, 1),
    )
    assert Subscription.objects.get().currency == "EUR"
    body = send(
        writer,
        "subscriptions",
        [
            {
                "external_id": "s1",
                "end_date": "2025-03-01",
                "status": "canceled",
                "churn_reason": "budget",
            }
        ],
    )
    assert body["updated"] == 1
    account.refresh_from_db()
    assert (account.status, account.churned_on, account.churn_reason) == (
        "churned",
        dt.date(2025, 3, 1),
        "budget",
    )


def test_upgrade_sent_as_an_ended_row_and_a_new_row_moves_mrr_to_the_new_plan(writer):
    AccountFactory(external_id="acme")
    send(writer, "subscriptions", [subscription(start_date="2024-01-01")])
    today = dt.date.today()
    body = send(
        writer,
        "subscriptions",
        [
            {"external_id": "s1", "end_date": today.isoformat()},
            subscription(
                external_id="s2", plan="enterprise", mrr=1200, start_date=today.isoformat()
            ),
        ],
    )
    assert (body["created"], body["updated"]) == (1, 1)
    account = Account.objects.get()
    assert (account.status, account.mrr) == ("active", Decimal("1200.00"))
    assert account.customer_since == dt.date(2024, 1, 1)


def test_subscription_rejections_name_the_field(writer):
    AccountFactory(external_id="acme")
    body = send(
        writer,
        "subscriptions",
        [
            {"external_id": "s1", "account_id": "acme"},
            subscription(external_id="s2", mrr=-1, quantity=-2, currency="euro"),
            subscription(external_id="s3", billing_period_months=61, status="paused"),
            subscription(external_id="s4", end_date="2024-12-31", renewal_date="2024-06-01"),
            subscription(external_id="s5", status="canceled"),
            subscription(external_id="s6", mrr="lots", start_date="01/02/2025"),
            subscription(external_id="s7", renewal_date="2025-02-30", account_id="ghost"),
            subscription(external_id="s8", account_id="ghost"),
        ],
    )
    assert set(errors_of(body, 0)) == {"plan", "mrr", "start_date"}
    assert set(errors_of(body, 1)) == {"mrr", "quantity", "currency"}
    assert set(errors_of(body, 2)) == {"billing_period_months", "status"}
    assert set(errors_of(body, 3)) == {"end_date", "renewal_date"}
    assert errors_of(body, 4) == {"end_date": ["Required when status is canceled."]}
    assert set(errors_of(body, 5)) == {"mrr", "start_date"}
    assert set(errors_of(body, 6)) == {"renewal_date"}  # format first; the account comes later
    assert errors_of(body, 7) == {"account_id": ["No account with external_id 'ghost'."]}
    assert not Subscription.objects.exists()


def test_end_date_sent_alone_is_checked_against_the_stored_start(writer):
    AccountFactory(external_id="acme")
    send(writer, "subscriptions", [subscription(start_date="2025-01-01")])
    body = send(writer, "subscriptions", [{"external_id": "s1", "end_date": "2024-06-01"}])
    assert "start_date" in errors_of(body, 0)["end_date"][0]
    assert Subscription.objects.get().end_date is None


# Survey responses ----------------------------------------------------------------------------


def response(**fields) -> dict:
    return {
        "external_id": "r1",
        "account_id": "acme",
        "kind": "nps",
        "score": 9,
        "responded_at": "2025-06-01T10:00:00Z",
        **fields,
    }


def test_survey_responses_are_stored_once_and_linked_to_their_contact(writer):
    account = AccountFactory(external_id="acme")
    ann = ContactFactory(account=account, external_id="c1", email="ann@acme.com")
    items = [
        response(contact_id="c1"),
        response(external_id="r2", contact_email="ANN@acme.com"),
        response(external_id="r3", contact_email="stranger@acme.com", kind="csat", score=4),
    ]
    assert send(writer, "survey-responses", items)["created"] == 3
    assert send(writer, "survey-responses", items)["updated"] == 3
    links = dict(SurveyResponse.objects.values_list("external_id", "contact"))
    assert links == {"r1": ann.pk, "r2": ann.pk, "r3": None}


def test_survey_score_range_depends_on_the_kind(writer):
    AccountFactory(external_id="acme")
    body = send(
        writer,
        "survey-responses",
        [
            response(score=11),
            response(external_id="r2", kind="csat", score=0),
            response(external_id="r3", kind="ces"),
            response(external_id="r4", kind="csat", score=5),
        ],
    )
    assert "0 to 10" in errors_of(body, 0)["score"][0]
    assert "1 and 5" in errors_of(body, 1)["score"][0]
    assert "kind" in errors_of(body, 2)
    assert body["created"] == 1


def test_survey_rejects_unknown_contact_id_and_a_contact_of_another_account(writer):
    AccountFactory(external_id="acme")
    ContactFactory(external_id="elsewhere")
    body = send(
        writer,
        "survey-responses",
        [
            response(contact_id="ghost"),
            response(external_id="r2", contact_id="elsewhere"),
            response(external_id="r3", responded_at="last tuesday"),
        ],
    )
    assert "ghost" in errors_of(body, 0)["contact_id"][0]
    assert "another account" in errors_of(body, 1)["contact_id"][0]
    assert "responded_at" in errors_of(body, 2)
    assert not SurveyResponse.objects.exists()


def test_body_larger_than_the_upload_limit_is_413(writer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    items = [{"external_id": f"a{i}", "name": "A long enough name"} for i in range(20)]
    body = send(writer, "accounts", items, status=413)
    assert "larger" in body["detail"]
    assert not Account.objects.exists()


def test_survey_update_may_name_only_the_contact_email(writer):
    account = AccountFactory(external_id="acme")
    ann = ContactFactory(account=account, email="ann@acme.com")
    send(writer, "survey-responses", [response()])
    body = send(
        writer, "survey-responses", [{"external_id": "r1", "contact_email": "ann@acme.com"}]
    )
    assert body["updated"] == 1
    assert SurveyResponse.objects.get().contact == ann


def test_service_returns_the_ids_of_stored_rows_in_item_order():
    first = upserts.accounts_upsert(items=[{"external_id": "b", "name": "B"}])
    result = upserts.accounts_upsert(
        items=[{"external_id": "a", "name": "A"}, {"external_id": "x"}, {"external_id": "b"}]
    )
    by_id = dict(Account.objects.values_list("pk", "external_id"))
    assert [by_id[pk] for pk in result.ids] == ["a", "b"]
    assert result.ids[1] == first.ids[0]
    with pytest.raises(upserts.TooManyItems):
        upserts.accounts_upsert(items=[{}] * 1001)


# Inputs that reached the database or the response unchecked (500s) ----------------------------


def post_raw(client, kind: str, body: str):
    return client.post(f"/api/v1/{kind}/bulk", data=body, content_type="application/json")


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
