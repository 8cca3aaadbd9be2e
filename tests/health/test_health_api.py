import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import DailyUsage
from health.models import SentimentOverride
from health.services.scores import health_scores_compute
from tests.factories import AccountFactory, SubscriptionFactory, UserFactory

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture
def account(db):
    owner = UserFactory(username="csm")
    account = AccountFactory(external_id="acme", owner=owner)
    SubscriptionFactory(account=account, start_date=dt.date(2024, 1, 1))
    for d in range(0, 60, 2):
        DailyUsage.objects.create(
            account=account,
            day=AS_OF - dt.timedelta(days=d),
            event_name="login",
            event_count=2 + d % 5,
        )
    for days_back in (20, 10, 0):
        health_scores_compute(as_of=AS_OF - dt.timedelta(days=days_back), account_ids=[account.pk])
    return account


def url(external_id="acme", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/accounts/{external_id}/health" + (f"?{query}" if query else "")


def test_health_explains_itself_and_contributions_add_up(account, token_client):
    body = token_client("read").get(url()).json()
    assert body["as_of"] == "2025-06-30"
    assert body["scorecard"] == {"name": "Default", "version": 1}
    assert body["grade"] in {"green", "yellow", "red"}
    assert {"name", "raw_value", "points", "weight", "contribution", "missing"} <= set(
        body["measures"][0]
    )
    assert sum(m["contribution"] for m in body["measures"]) == pytest.approx(
        body["score"], abs=1e-6
    )
    assert [h["date"] for h in body["history"]] == ["2025-06-10", "2025-06-20", "2025-06-30"]
    assert body["changes"]["from"] == "2025-06-20" and body["changes"]["to"] == "2025-06-30"
    assert body["drivers"] == []
    assert body["churn_risk"] is None and body["churn_risk_reason"]


def test_history_filters_by_date_range(account, token_client):
    client = token_client("read")
    body = client.get(url(**{"from": "2025-06-15", "to": "2025-06-25"})).json()
    assert [h["date"] for h in body["history"]] == ["2025-06-20"]
    changes = client.get(url(compare_to="2025-06-12")).json()["changes"]
    assert changes["from"] == "2025-06-10"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2025-06-20", "to": "2025-06-01"}, "to"),
        ({"since": "2025-01-01"}, "since"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_the_field(account, token_client, params, field):
    response = token_client("read").get(url(**params))
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_unknown_or_invisible_accounts_are_404(account, token_client):
    assert token_client("read").get(url("nope")).status_code == 404
    other = APIClient()
    other.force_login(UserFactory(username="another-csm"))
    assert other.get(url()).status_code == 404
    owner = APIClient()
    owner.force_login(account.owner)
    assert owner.get(url()).status_code == 200


def test_an_account_without_scores_says_so(db, token_client):
    AccountFactory(external_id="fresh")
    body = token_client("read").get(url("fresh")).json()
    assert (
        body["score"] is None and body["measures"] == [] and "not been computed" in body["detail"]
    )


def test_tokens_need_a_scope(account, token_client):
    assert token_client("events:write").get(url()).status_code == 403


def test_a_csm_adds_a_sentiment_override(account):
    client = APIClient()
    client.force_login(account.owner)
    expires = (timezone.now().date() + dt.timedelta(days=30)).isoformat()
    response = client.post(
        "/api/v1/accounts/acme/sentiment",
        {"grade": "red", "reason": "Champion left", "expires_on": expires},
        format="json",
    )
    assert response.status_code == 201, response.content
    made = SentimentOverride.objects.get()
    assert made.author == account.owner and made.grade == "red"


def test_sentiment_input_errors_name_the_field(account, token_client):
    client = token_client("accounts:write")
    response = client.post(
        "/api/v1/accounts/acme/sentiment",
        {"grade": "red", "points": 10, "reason": "x", "expires_on": "2999-01-01"},
        format="json",
    )
    assert response.status_code == 400 and "grade" in response.json()["errors"]
    response = client.post(
        "/api/v1/accounts/acme/sentiment",
        {"grade": "purple", "reason": "x", "expires_on": "2000-01-01"},
        format="json",
    )
    assert response.status_code == 400 and "grade" in response.json()["errors"]
    assert token_client("read").post("/api/v1/accounts/acme/sentiment", {}).status_code == 403
    assert SentimentOverride.objects.count() == 0


def test_a_lone_surrogate_in_a_sentiment_is_a_400_not_a_crash(account, token_client):
    # The grade is echoed in the "not a valid choice" error, which could not be encoded.
    response = token_client("accounts:write").post(
        "/api/v1/accounts/acme/sentiment",
        data='{"grade": "\\ud800", "reason": "x", "expires_on": "2999-01-01"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["grade"]
    assert SentimentOverride.objects.count() == 0


@pytest.mark.parametrize("path", ["health", "sentiment"])
def test_a_nul_character_in_the_account_path_is_404_not_a_crash(account, token_client, path):
    client = token_client("read", "accounts:write")
    response = client.generic(
        "GET" if path == "health" else "POST",
        f"/api/v1/accounts/ac%00me/{path}",
        '{"grade": "red", "reason": "x", "expires_on": "2999-01-01"}',
        content_type="application/json",
    )
    assert response.status_code == 404


def test_account_list_and_detail_show_health_and_sort_by_risk_with_empty_values_last(
    account, token_client
):
    from health.models import AccountHealth

    risky = AccountFactory(external_id="risky")
    SubscriptionFactory(account=risky, start_date=dt.date(2024, 1, 1))
    health_scores_compute(as_of=AS_OF, account_ids=[risky.pk])
    AccountHealth.objects.filter(account=risky).update(churn_risk=0.8, churn_model_version=3)
    AccountHealth.objects.filter(account=account).update(churn_risk=0.1, churn_model_version=3)
    AccountFactory(external_id="unscored")
    client = token_client("read")

    by_risk = client.get("/api/v1/accounts?ordering=-churn_risk").json()["results"]
    assert [a["external_id"] for a in by_risk] == ["risky", "acme", "unscored"]
    assert by_risk[0]["churn_risk"] == 0.8 and by_risk[0]["churn_model_version"] == 3
    by_score = client.get("/api/v1/accounts?ordering=health_score").json()["results"]
    assert by_score[-1]["external_id"] == "unscored" and by_score[-1]["health_score"] is None

    detail = client.get("/api/v1/accounts/acme").json()
    assert detail["health_score"] == client.get(url()).json()["score"]
    assert detail["grade"] in {"green", "yellow", "red"}


def test_a_sentiment_override_shows_in_the_score_at_once(
    account, django_capture_on_commit_callbacks
):
    client = APIClient()
    client.force_login(account.owner)
    expires = (timezone.now().date() + dt.timedelta(days=30)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/accounts/acme/sentiment",
            {"grade": "red", "reason": "Champion left", "expires_on": expires},
            format="json",
        )
    assert response.status_code == 201, response.content
    measures = client.get("/api/v1/accounts/acme/health").json()["measures"]
    sentiment = next(m for m in measures if m["name"] == "csm_sentiment")
    assert sentiment["missing"] is False and sentiment["points"] == 20


def test_an_external_id_with_a_slash_reaches_its_health(account, token_client):
    account.external_id = "acme/eu"
    account.save(update_fields=["external_id"])
    client = token_client("read")
    for external_id in ("acme/eu", "acme%2Feu"):
        body = client.get(url(external_id)).json()
        assert body["account"] == "acme/eu" and body["score"] is not None
    assert client.get(url("acme")).status_code == 404
