"""Bulk upserts of subscriptions and survey responses."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, Subscription, SurveyResponse
from accounts.services import upserts
from tests.accounts.bulk_helpers import errors_of, response, send, subscription
from tests.factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.django_db


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
