"""POST /api/v1/events: usage events from integrations, up to 1,000 per request.

A DRF view for authentication, scope, rate limit and the OpenAPI description, but the body is
read and parsed here with orjson: DRF parsers and per-item serializers cost more than the
whole bulk write of a batch.
"""

import orjson
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.views import APIView

from accounts.api.auth import HasScope, TokenRateThrottle
from accounts.services.ingest import events_ingest

MAX_EVENTS = 1000
MAX_BODY_BYTES = 1024 * 1024


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request is too large."
    default_code = "payload_too_large"


_EVENT = inline_serializer(
    "UsageEventIn",
    fields={
        "event_id": serializers.CharField(max_length=255, help_text="Idempotency key per account"),
        "account_id": serializers.CharField(help_text="The account's external_id"),
        "user_id": serializers.CharField(max_length=255, required=False, allow_null=True),
        "event": serializers.CharField(max_length=100, help_text="Event name, e.g. login"),
        "timestamp": serializers.DateTimeField(
            help_text="ISO 8601; without an offset it is taken as UTC. At most 1 hour in the "
            "future, not before 2000-01-01."
        ),
        "value": serializers.FloatField(required=False, allow_null=True),
        "properties": serializers.DictField(
            required=False, allow_null=True, help_text="A JSON object, at most 32 KB serialised"
        ),
    },
    many=True,
)
_RESULT = inline_serializer(
    "EventIngestResult",
    fields={
        "accepted": serializers.IntegerField(help_text="Events stored by this request"),
        "duplicates": serializers.IntegerField(
            help_text="Events already stored (or repeated in the batch); stored once"
        ),
        "rejected": inline_serializer(
            "RejectedEvent",
            fields={
                "index": serializers.IntegerField(),
                "event_id": serializers.CharField(allow_null=True),
                "errors": serializers.DictField(child=serializers.ListField()),
            },
            many=True,
        ),
    },
)


class EventIngestView(APIView):
    required_scope = "events:write"
    permission_classes = [HasScope]
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        operation_id="events_ingest",
        summary="Send usage events",
        description=(
            "Stores up to 1,000 events (1 MB) per request. Valid events are stored even when "
            "others are rejected; a resent event_id (per account) is counted as a duplicate and "
            "stored once. Needs a token with the events:write scope."
        ),
        request=inline_serializer("EventIngestRequest", fields={"events": _EVENT}),
        responses={
            200: _RESULT,
            400: OpenApiResponse(description='Malformed JSON or not {"events": [...]}'),
            401: OpenApiResponse(description="No, unknown or revoked token"),
            403: OpenApiResponse(description="The token lacks the events:write scope"),
            413: OpenApiResponse(description="More than 1,000 events or a body over 1 MB"),
            415: OpenApiResponse(description="Content-Type is not application/json"),
            429: OpenApiResponse(description="Rate limit reached; see Retry-After"),
        },
        examples=[
            OpenApiExample(
                "One login",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "e-1",
                            "account_id": "acme",
                            "user_id": "u-7",
                            "event": "login",
                            "timestamp": "2025-06-01T09:30:00Z",
                            "value": None,
                            "properties": {"plan": "pro"},
                        }
                    ]
                },
            )
        ],
    )
    def post(self, request, *args, **kwargs) -> HttpResponse:
        events = _read_events(request)
        result = events_ingest(events=events)
        body = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
        }
        return HttpResponse(orjson.dumps(body), content_type="application/json")


def _read_events(request) -> list:
    """The request's event list, or the reason it cannot be read (400, 413 or 415)."""
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(media_type or "none", "Send Content-Type: application/json.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise ParseError("Content-Length is not a number.") from exc
    if declared > MAX_BODY_BYTES:  # refuse before reading the body
        raise PayloadTooLarge(f"Request body is over {MAX_BODY_BYTES} bytes.")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body is over {MAX_BODY_BYTES} bytes.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"Malformed JSON: {exc}") from exc
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise ParseError(
            {
                "detail": 'Expected {"events": [...]}.',
                "errors": {"events": ["Must be a list of events."]},
            }
        )
    if len(events) > MAX_EVENTS:
        raise PayloadTooLarge(f"At most {MAX_EVENTS} events per request; got {len(events)}.")
    return events
