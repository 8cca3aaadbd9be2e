import datetime as dt

import pytest

from health.models import ChurnModel

URL = "/api/v1/health/models/latest"

pytestmark = pytest.mark.django_db


def stored_model(version: int, **fields) -> ChurnModel:
    defaults = {
        "as_of": dt.date(2025, 6, 30),
        "horizon_days": 90,
        "status": "trained",
        "algorithm": "logistic_regression",
        "features": ["utilisation", "tenure_days"],
        "training_examples": 1200,
        "training_accounts": 150,
        "churn_count": 48,
        "backtest": {
            "available": True,
            "cutoff": "2025-04-01",
            "horizon_days": 90,
            "auc": 0.81,
            "lift": 3.2,
            "brier": 0.061,
            "calibration": [{"predicted": 0.05, "observed": 0.04, "count": 100}],
            "lead_time_days": 42.0,
            "base_rate": 0.07,
            "scored_accounts": 100,
            "churned_accounts": 7,
        },
    }
    return ChurnModel.objects.create(version=version, **{**defaults, **fields})


def test_it_says_clearly_when_no_model_has_been_trained(token_client):
    response = token_client("read").get(URL)
    assert response.status_code == 404
    assert "No churn model has been trained yet" in response.json()["detail"]


def test_it_returns_the_newest_version_with_its_backtest(token_client):
    stored_model(1, as_of=dt.date(2025, 5, 31))
    stored_model(2)
    body = token_client("read").get(URL).json()
    assert body["version"] == 2
    assert body["status"] == "trained"
    assert body["as_of"] == "2025-06-30" and body["horizon_days"] == 90
    assert body["features"] == ["utilisation", "tenure_days"]
    assert body["training_examples"] == 1200 and body["churn_count"] == 48
    for key in ("auc", "lift", "brier", "calibration", "lead_time_days"):
        assert key in body["backtest"]
    assert "artifact" not in body


def test_it_reports_an_untrained_version_without_numbers(token_client):
    stored_model(
        1,
        status="insufficient_history",
        message="not enough churn history: 12 churns, need 30",
        algorithm="",
        churn_count=12,
        backtest=None,
    )
    body = token_client("read").get(URL).json()
    assert body["status"] == "insufficient_history"
    assert body["message"] == "not enough churn history: 12 churns, need 30"
    assert body["backtest"] is None and body["algorithm"] is None


def test_it_needs_the_read_scope(token_client):
    assert token_client("events:write").get(URL).status_code == 403


def test_it_needs_authentication(client):
    assert client.get(URL).status_code in (401, 403)


def test_it_is_in_the_openapi_schema(token_client, admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"][URL]["get"]
    backtest = schema["components"]["schemas"]["ChurnBacktest"]["properties"]
    assert {"auc", "lift", "brier", "calibration", "lead_time_days"} <= set(backtest)
    assert "404" in operation["responses"]
