"""Starting a recompute and polling background jobs.

POST /api/v1/health/recompute  {"as_of": "YYYY-MM-DD"} (optional)  -> 202 {"id": job id}
GET  /api/v1/jobs/{id}          -> the job's status, progress and result
"""

import uuid

from django.db.models import Count
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.auth import TokenRateThrottle, request_token
from accounts.models.tokens import TokenScope
from health.models import Job
from health.services.recompute import health_recompute


class CanRecompute(permissions.BasePermission):
    """A token with accounts:write, or a logged-in manager or staff member: a recompute rewrites
    every account's score, which is more than a CSM's own book."""

    message = "Starting a recompute needs the 'accounts:write' scope or a manager's login."

    def has_permission(self, request, view) -> bool:
        token = request_token(request)
        if token is not None:
            return token.has_scope(TokenScope.ACCOUNTS_WRITE)
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_staff or user.is_superuser or user.groups.filter(name="Manager").exists()


class CanReadJobs(permissions.BasePermission):
    """Jobs hold counts, not customer data: any logged-in person, or a token that may read or may
    start recomputes (so an integration can poll the job it started)."""

    message = "Reading jobs needs the 'read' or 'accounts:write' scope."

    def has_permission(self, request, view) -> bool:
        token = request_token(request)
        if token is not None:
            return token.has_scope(TokenScope.READ) or token.has_scope(TokenScope.ACCOUNTS_WRITE)
        return bool(request.user and request.user.is_authenticated)


class RecomputeRequestSerializer(serializers.Serializer):
    as_of = serializers.DateField(
        required=False, allow_null=True, help_text="Compute as of this date (default: today, UTC)"
    )

    def validate_as_of(self, value):
        if value is not None and value > timezone.now().date():
            raise serializers.ValidationError("Must not be in the future.")
        return value


class JobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "params",
            "progress",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema(
        responses=inline_serializer(
            "JobProgress", {"done": serializers.IntegerField(), "total": serializers.IntegerField()}
        )
    )
    def get_progress(self, job: Job) -> dict:
        return {"done": job.chunks_done, "total": job.chunks_total}


JobCreated = inline_serializer("JobCreated", {"id": serializers.UUIDField()})


@extend_schema(
    operation_id="health_recompute",
    summary="Recompute health scores and churn risk as of a date",
    request=RecomputeRequestSerializer,
    responses={202: JobCreated},
    examples=[OpenApiExample("As of a date", value={"as_of": "2025-06-30"}, request_only=True)],
)
@api_view(["POST"])
@permission_classes([CanRecompute])
@throttle_classes([TokenRateThrottle])
def recompute_create(request: Request) -> Response:
    form = RecomputeRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    user = request.user if getattr(request.user, "pk", None) else None
    job = health_recompute(as_of=form.validated_data.get("as_of"), requested_by=user)
    return Response({"id": str(job.pk)}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    operation_id="job_retrieve", summary="A background job's status", responses=JobSerializer
)
@api_view(["GET"])
@permission_classes([CanReadJobs])
@throttle_classes([TokenRateThrottle])
def job_detail(request: Request, job_id: str) -> Response:
    try:
        pk = uuid.UUID(job_id)
    except ValueError as exc:
        raise NotFound("No such job.") from exc
    job = Job.objects.annotate(chunks_done=Count("chunks")).filter(pk=pk).first()
    if job is None:
        raise NotFound("No such job.")
    return Response(JobSerializer(job).data)


urlpatterns = [
    path("health/recompute", recompute_create, name="health-recompute"),
    path("jobs/<str:job_id>", job_detail, name="job-detail"),
]
