"""Health endpoints: an account's health explained (score, measures, drivers, history, what
changed) and adding a CSM sentiment override."""

from django.apps import apps
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import HasScope, HasScopeOrIsPerson, TokenRateThrottle, request_token
from accounts.api.reads import account_or_404
from accounts.models import Account
from health import selectors
from health.services.churn import prediction_drivers
from health.services.recompute import health_recompute
from health.services.scores import sentiment_override_add

EXTERNAL_ID = OpenApiParameter(
    "external_id", str, OpenApiParameter.PATH, description="The account's external_id."
)


class HealthQuery(serializers.Serializer):
    # "from" is a keyword, so the field is declared through the class namespace.
    locals()["from"] = serializers.DateField(
        required=False, help_text="History from this date (YYYY-MM-DD)."
    )
    to = serializers.DateField(required=False, help_text="History up to this date (YYYY-MM-DD).")
    compare_to = serializers.DateField(
        required=False,
        help_text="Show changes against the snapshot on or before this date "
        "(default: the previous snapshot).",
    )

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields) - {"format"})
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown parameter. Known: {', '.join(self.fields)}."] for name in unknown}
            )
        return super().to_internal_value(data)

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["to"] < attrs["from"]:
            raise serializers.ValidationError({"to": ["Must be on or after 'from'."]})
        return attrs


def _churn(account: Account) -> dict:
    prediction = selectors.churn_prediction_latest(account=account)
    if prediction is not None:
        return {
            "churn_risk": prediction.churn_risk,
            "churn_model_version": prediction.churn_model.version,
            "churn_risk_as_of": prediction.as_of.isoformat(),
            "churn_risk_reason": None,
            "drivers": prediction_drivers(prediction),
        }
    return {
        "churn_risk": None,
        "churn_model_version": None,
        "churn_risk_as_of": None,
        "churn_risk_reason": _no_churn_reason(),
        "drivers": [],
    }


def _no_churn_reason() -> str:
    try:
        model = apps.get_model("health", "ChurnModel")
    except LookupError:
        return "Churn risk is not available in this installation."
    latest = model.objects.order_by("-version").first()
    if latest is None:
        return "No churn model has been trained yet; health only."
    if latest.status != "trained":
        return latest.message or "Too little churn history to estimate churn risk; health only."
    return "This account has no churn-risk prediction yet."


def _sentiment(account: Account, as_of) -> dict | None:
    for override in selectors.sentiment_overrides_for(account=account):
        if override.revoked_at is None and override.expires_on > as_of:
            return {
                "grade": override.grade or None,
                "points": override.points,
                "reason": override.reason,
                "author": getattr(override.author, "username", None),
                "created_at": override.created_at.isoformat(),
                "expires_on": override.expires_on.isoformat(),
            }
    return None


@extend_schema(
    parameters=[EXTERNAL_ID, HealthQuery],
    responses={200: inline_serializer("AccountHealth", {"score": serializers.FloatField()})},
)
class AccountHealthView(APIView):
    required_scope = "read"
    permission_classes = [HasScope]
    throttle_classes = [TokenRateThrottle]

    def get(self, request: Request, external_id: str) -> Response:
        account = account_or_404(request, external_id)
        query = HealthQuery(data={k: request.query_params.get(k) for k in request.query_params})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        snapshot = selectors.latest_health_score(account=account)
        body = {"account": account.external_id, **_snapshot_body(account, snapshot, params)}
        body.update(_churn(account))
        body["history"] = selectors.health_history(
            account=account, from_date=params.get("from"), to_date=params.get("to")
        )
        return Response(body)


def _snapshot_body(account: Account, snapshot, params: dict) -> dict:
    if snapshot is None:
        return {
            "score": None,
            "grade": None,
            "as_of": None,
            "scorecard": None,
            "measures": [],
            "changes": None,
            "sentiment": None,
            "detail": "Health has not been computed for this account yet.",
        }
    version = snapshot.scorecard_version
    if params.get("compare_to"):
        changes = selectors.health_changes(
            account=account, from_date=params["compare_to"], to_date=snapshot.as_of
        )
    else:
        changes = selectors.health_changes_since_previous(account=account, snapshot=snapshot)
    return {
        "score": snapshot.score,
        "grade": snapshot.grade,
        "as_of": snapshot.as_of.isoformat(),
        "scorecard": {"name": version.scorecard.name, "version": version.number},
        "measures": snapshot.measures,
        "changes": changes,
        "sentiment": _sentiment(account, snapshot.as_of),
    }


class SentimentInput(serializers.Serializer):
    grade = serializers.ChoiceField(["green", "yellow", "red"], required=False)
    points = serializers.FloatField(required=False, min_value=0, max_value=100)
    reason = serializers.CharField()
    expires_on = serializers.DateField()


@extend_schema(
    parameters=[EXTERNAL_ID],
    request=SentimentInput,
    responses={201: inline_serializer("SentimentOverride", {"id": serializers.IntegerField()})},
)
class AccountSentimentView(APIView):
    required_scope = "accounts:write"
    permission_classes = [HasScopeOrIsPerson]
    throttle_classes = [TokenRateThrottle]

    def post(self, request: Request, external_id: str) -> Response:
        account = account_or_404(request, external_id)
        data = SentimentInput(data=request.data)
        data.is_valid(raise_exception=True)
        author = None if request_token(request) else request.user
        try:
            override = sentiment_override_add(account=account, author=author, **data.validated_data)
        except DjangoValidationError as exc:
            raise DrfValidationError(exc.message_dict) from exc
        # The CSM expects to see the judgement in the score now, not after tonight's recompute.
        job = health_recompute(account_ids=[account.pk], requested_by=author)
        return Response(
            {
                "id": override.pk,
                "account": account.external_id,
                "grade": override.grade or None,
                "points": override.points,
                "reason": override.reason,
                "expires_on": override.expires_on.isoformat(),
                "created_at": override.created_at.isoformat(),
                "recompute_job": str(job.pk),
                "detail": "Counts in the account's health score until it expires.",
            },
            status=status.HTTP_201_CREATED,
        )


urlpatterns = [
    path(
        "accounts/<path:external_id>/health", AccountHealthView.as_view(), name="api-account-health"
    ),
    path(
        "accounts/<path:external_id>/sentiment",
        AccountSentimentView.as_view(),
        name="api-account-sentiment",
    ),
]
