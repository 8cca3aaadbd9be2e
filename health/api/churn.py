"""Churn-risk model endpoint: the latest trained (or refused) model version and its backtest."""

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import HasScope, TokenRateThrottle
from health.models import ChurnModel
from health.services.churn_data import churn_min_churns

CALIBRATION_BIN = {
    "predicted": serializers.FloatField(help_text="Mean predicted probability in the bin."),
    "observed": serializers.FloatField(help_text="Share of the bin's accounts that churned."),
    "count": serializers.IntegerField(),
}
SPREAD = {
    "min": serializers.FloatField(),
    "mean": serializers.FloatField(),
    "max": serializers.FloatField(),
}
EarlierCutoff = inline_serializer(
    "ChurnBacktestEarlierCutoff",
    {
        "cutoff": serializers.DateField(),
        "available": serializers.BooleanField(),
        "reason": serializers.CharField(required=False),
        "auc": serializers.FloatField(allow_null=True, required=False),
        "lift": serializers.FloatField(allow_null=True, required=False),
        "brier": serializers.FloatField(allow_null=True, required=False),
        "scored_accounts": serializers.IntegerField(required=False),
        "churned_accounts": serializers.IntegerField(required=False),
    },
    many=True,
)
Stability = inline_serializer(
    "ChurnBacktestStability",
    {
        "cutoffs": serializers.IntegerField(help_text="Cut-offs tried, the latest included."),
        "available": serializers.IntegerField(help_text="Cut-offs with enough history."),
        "auc": inline_serializer("ChurnAucSpread", SPREAD, allow_null=True),
        "lift": inline_serializer("ChurnLiftSpread", SPREAD, allow_null=True),
    },
    help_text="AUC and lift across the latest and the earlier cut-offs.",
)
Backtest = inline_serializer(
    "ChurnBacktest",
    {
        "available": serializers.BooleanField(),
        "reason": serializers.CharField(required=False, help_text="Why there is no backtest."),
        "cutoff": serializers.DateField(),
        "horizon_days": serializers.IntegerField(),
        "auc": serializers.FloatField(allow_null=True),
        "lift": serializers.FloatField(allow_null=True, help_text="Top-decile lift."),
        "brier": serializers.FloatField(allow_null=True),
        "calibration": inline_serializer("ChurnCalibrationBin", CALIBRATION_BIN, many=True),
        "lead_time_days": serializers.FloatField(
            allow_null=True,
            help_text="Median days from an account first being flagged (top-decile risk or a red "
            "grade) to its churn.",
        ),
        "base_rate": serializers.FloatField(allow_null=True),
        "scored_accounts": serializers.IntegerField(),
        "churned_accounts": serializers.IntegerField(),
        "earlier_cutoffs": EarlierCutoff,
        "stability": Stability,
    },
    allow_null=True,
)
ChurnModelBody = inline_serializer(
    "ChurnModel",
    {
        "version": serializers.IntegerField(),
        "status": serializers.ChoiceField(["trained", "insufficient_history"]),
        "message": serializers.CharField(help_text="Why no model was trained, when it was not."),
        "as_of": serializers.DateField(),
        "horizon_days": serializers.IntegerField(),
        "algorithm": serializers.CharField(),
        "features": serializers.ListField(child=serializers.CharField()),
        "training_examples": serializers.IntegerField(),
        "training_accounts": serializers.IntegerField(),
        "churn_count": serializers.IntegerField(),
        "min_churns": serializers.IntegerField(),
        "backtest": Backtest,
        "created_at": serializers.DateTimeField(),
    },
)


def model_body(model: ChurnModel) -> dict:
    trained = model.status == "trained"
    return {
        "version": model.version,
        "status": model.status,
        "message": model.message,
        "as_of": model.as_of.isoformat(),
        "horizon_days": model.horizon_days,
        "algorithm": model.algorithm if trained else None,
        "features": model.features,
        "training_examples": model.training_examples,
        "training_accounts": model.training_accounts,
        "churn_count": model.churn_count,
        "min_churns": churn_min_churns(),
        "backtest": model.backtest if trained else None,
        "created_at": model.created_at.isoformat(),
    }


@extend_schema(
    summary="The latest churn-risk model version and its backtest",
    responses={
        200: ChurnModelBody,
        404: inline_serializer("NoChurnModel", {"detail": serializers.CharField()}),
    },
)
class ChurnModelLatestView(APIView):
    required_scope = "read"
    permission_classes = [HasScope]
    throttle_classes = [TokenRateThrottle]

    def get(self, request: Request) -> Response:
        model = ChurnModel.objects.defer("artifact").order_by("-version").first()
        if model is None:
            raise NotFound(
                "No churn model has been trained yet: run `manage.py train_churn_model` "
                "(the weekly retraining does it too)."
            )
        return Response(model_body(model))


urlpatterns = [
    path("health/models/latest", ChurnModelLatestView.as_view(), name="churn-model-latest"),
]
