"""Bulk upserts: the envelope, access, accounts and contacts."""

import json
import threading

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection
from rest_framework.test import APIClient

from accounts.models import Account, Contact
from accounts.services import upserts
from accounts.services.tokens import api_token_create, api_token_revoke
from tests.accounts.bulk_helpers import errors_of, send
from tests.factories import AccountFactory, ContactFactory, UserFactory

pytestmark = pytest.mark.django_db


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
