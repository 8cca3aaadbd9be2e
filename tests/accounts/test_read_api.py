import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from tests.factories import (
    AccountFactory,
    ContactFactory,
    SubscriptionFactory,
    UsageEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(token_client):
    return token_client("read")


def external_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["external_id"] for row in response.json()["results"]]


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


# Accounts list -------------------------------------------------------------------------------


def test_account_list_needs_a_token_or_a_session(token_client):
    assert APIClient().get("/api/v1/accounts").status_code == 401
    assert token_client("events:write").get("/api/v1/accounts").status_code == 403


def test_account_list_filters_by_status_segment_owner_stage_and_text(reader):
    alice = UserFactory(username="alice")
    AccountFactory(external_id="a1", name="Acme", status="active", segment="smb", owner=alice)
    AccountFactory(external_id="a2", name="Globex", status="churned", segment="enterprise")
    AccountFactory(
        external_id="a3",
        name="Initech",
        status="active",
        segment="enterprise",
        lifecycle_stage="renewal",
    )
    assert external_ids(reader.get("/api/v1/accounts?status=active")) == ["a1", "a3"]
    assert external_ids(reader.get("/api/v1/accounts?segment=enterprise")) == ["a2", "a3"]
    assert external_ids(reader.get("/api/v1/accounts?owner=alice")) == ["a1"]
    assert external_ids(reader.get("/api/v1/accounts?stage=renewal")) == ["a3"]
    assert external_ids(reader.get("/api/v1/accounts?q=glob")) == ["a2"]
    assert external_ids(reader.get("/api/v1/accounts?q=A3")) == ["a3"]


def test_invalid_filter_or_ordering_is_400_naming_the_parameter(reader):
    for query, name in [
        ("status=sleeping", "status"),
        ("stage=teen", "stage"),
        ("ordering=-password", "ordering"),
        ("page_size=0", "page_size"),
        ("segmnt=smb", "segmnt"),
    ]:
        response = reader.get(f"/api/v1/accounts?{query}")
        assert response.status_code == 400, query
        assert name in response.json()["errors"], query


def test_account_list_orders_by_mrr_and_arr_descending_with_stable_ties(reader):
    AccountFactory(external_id="small", mrr=Decimal("10"))
    AccountFactory(external_id="big", mrr=Decimal("900"))
    AccountFactory(external_id="mid", mrr=Decimal("50"))
    assert external_ids(reader.get("/api/v1/accounts?ordering=-mrr")) == ["big", "mid", "small"]
    assert external_ids(reader.get("/api/v1/accounts?ordering=arr")) == ["small", "mid", "big"]


def test_account_list_is_paginated_with_count_and_links(reader):
    for i in range(5):
        AccountFactory(external_id=f"a{i}", name=f"Customer {i}")
    first = reader.get("/api/v1/accounts?page_size=2").json()
    assert first["count"] == 5
    assert first["previous"] is None
    assert [r["external_id"] for r in first["results"]] == ["a0", "a1"]
    last = reader.get("/api/v1/accounts?page_size=2&page=3").json()
    assert [r["external_id"] for r in last["results"]] == ["a4"]
    assert last["next"] is None and "page=2" in last["previous"]


def test_account_list_takes_a_constant_number_of_queries(reader, django_assert_max_num_queries):
    for _ in range(20):
        AccountFactory(owner=UserFactory())
    with django_assert_max_num_queries(6):
        assert reader.get("/api/v1/accounts").json()["count"] == 20


def test_csm_session_sees_only_owned_accounts_and_a_manager_sees_all():
    csm, other = UserFactory(), UserFactory()
    manager = UserFactory()
    manager.groups.add(Group.objects.create(name="Manager"))
    AccountFactory(external_id="mine", owner=csm)
    AccountFactory(external_id="theirs", owner=other)
    assert external_ids(session_client(csm).get("/api/v1/accounts")) == ["mine"]
    assert sorted(external_ids(session_client(manager).get("/api/v1/accounts"))) == [
        "mine",
        "theirs",
    ]
    assert session_client(csm).get("/api/v1/accounts/theirs").status_code == 404
    assert session_client(csm).get("/api/v1/accounts/theirs/contacts").status_code == 404


# Account detail ------------------------------------------------------------------------------


def test_account_detail_shows_profile_and_revenue_facts(reader):
    owner = UserFactory(username="alice")
    account = AccountFactory(
        external_id="acme",
        owner=owner,
        status="churned",
        mrr=Decimal("0"),
        customer_since=dt.date(2024, 1, 1),
        churned_on=dt.date(2025, 1, 1),
        churn_reason="price",
        attributes={"tier": "gold"},
    )
    body = reader.get("/api/v1/accounts/acme").json()
    assert body["external_id"] == "acme" and body["name"] == account.name
    assert body["owner"] == "alice"
    assert body["attributes"] == {"tier": "gold"}
    assert (body["status"], body["churn_reason"], body["churned_on"]) == (
        "churned",
        "price",
        "2025-01-01",
    )
    assert body["tenure_days"] == 366
    assert {"mrr", "arr", "customer_since", "created_at", "updated_at", "lifecycle_stage"} <= set(
        body
    )


def test_unknown_account_is_404_with_a_clear_detail(reader):
    response = reader.get("/api/v1/accounts/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.parametrize("suffix", ["", "/events", "/contacts", "/subscriptions", "/timeline"])
def test_a_nul_character_in_the_account_path_is_404_not_a_crash(reader, suffix):
    # PostgreSQL refuses a NUL even in a lookup, which made every one of these a 500.
    AccountFactory(external_id="acme")
    assert reader.get(f"/api/v1/accounts/ac%00me{suffix}").status_code == 404


# Nested and flat lists -----------------------------------------------------------------------


def test_account_events_are_newest_first_and_filtered_by_name_and_window(reader):
    account = AccountFactory(external_id="acme")
    UsageEventFactory(
        account=account,
        event_id="e1",
        name="login",
        occurred_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    )
    UsageEventFactory(
        account=account,
        event_id="e2",
        name="report_created",
        occurred_at=dt.datetime(2025, 6, 3, tzinfo=dt.UTC),
    )
    UsageEventFactory(
        account=account,
        event_id="e3",
        name="login",
        occurred_at=dt.datetime(2025, 6, 5, tzinfo=dt.UTC),
    )
    UsageEventFactory(event_id="other-account")

    def ids(query: str) -> list[str]:
        response = reader.get(f"/api/v1/accounts/acme/events{query}")
        assert response.status_code == 200, response.content
        return [e["event_id"] for e in response.json()["results"]]

    assert ids("") == ["e3", "e2", "e1"]
    assert ids("?event=login") == ["e3", "e1"]
    assert ids("?since=2025-06-02&until=2025-06-05T00:00:00Z") == ["e2"]
    response = reader.get("/api/v1/accounts/acme/events?since=soon")
    assert response.status_code == 400 and "since" in response.json()["errors"]


def test_contacts_and_subscriptions_are_listed_per_account_and_filtered(reader):
    acme, globex = AccountFactory(external_id="acme"), AccountFactory(external_id="globex")
    ContactFactory(account=acme, external_id="c1")
    ContactFactory(account=globex, external_id="c2")
    SubscriptionFactory(account=acme, external_id="s1")
    SubscriptionFactory(
        account=globex, external_id="s2", status="canceled", end_date=dt.date(2025, 2, 1)
    )
    assert external_ids(reader.get("/api/v1/accounts/acme/contacts")) == ["c1"]
    assert external_ids(reader.get("/api/v1/accounts/globex/subscriptions")) == ["s2"]
    assert sorted(external_ids(reader.get("/api/v1/contacts"))) == ["c1", "c2"]
    assert external_ids(reader.get("/api/v1/contacts?account_id=globex")) == ["c2"]
    assert external_ids(reader.get("/api/v1/subscriptions?status=active")) == ["s1"]
    row = reader.get("/api/v1/subscriptions?account_id=acme").json()["results"][0]
    assert (row["account_id"], row["plan"], row["mrr"]) == ("acme", "pro", "500.00")
    assert reader.get("/api/v1/accounts/ghost/subscriptions").status_code == 404


def test_csm_session_lists_only_contacts_of_owned_accounts():
    csm = UserFactory()
    ContactFactory(account=AccountFactory(owner=csm), external_id="mine")
    ContactFactory(external_id="theirs")
    assert external_ids(session_client(csm).get("/api/v1/contacts")) == ["mine"]


def test_schema_generates_for_the_v1_endpoints(reader):
    response = reader.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/accounts/{external_id}/events" in response.content
