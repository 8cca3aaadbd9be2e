"""POST /api/v1/<kind>/bulk: integrations upsert up to 1,000 records per call. The view checks
the envelope and the size; the services check every item and answer item by item."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import upserts

from . import serializers as s
from .auth import HasScope, TokenRateThrottle
from .parsers import JSONParser

_ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Malformed JSON or not {'items': [...]}."),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing, invalid or revoked token."),
    403: OpenApiResponse(s.ErrorSerializer, description="The token lacks accounts:write."),
    413: OpenApiResponse(s.ErrorSerializer, description="More than 1,000 items, or body too big."),
    429: OpenApiResponse(s.ErrorSerializer, description="Rate limit; see Retry-After."),
}


def _too_large(detail: str) -> Response:
    return Response({"detail": detail}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


class _BulkView(APIView):
    required_scope = "accounts:write"
    permission_classes = [HasScope]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [JSONParser]
    upsert = None  # the service, set by each endpoint

    def handle_bulk(self, request: Request) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError as exc:
            raise ParseError("Content-Length is not a number.") from exc
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return _too_large(
                f"Request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
            )
        body = request.data
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return Response(
                {
                    "detail": "Invalid input.",
                    "errors": {
                        "items": ['Send a JSON object {"items": [...]} with a list of items.']
                    },
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        if len(items) > upserts.MAX_ITEMS:
            return _too_large(f"At most {upserts.MAX_ITEMS} items per request; got {len(items)}.")
        result = type(self).upsert(items=items)
        return Response(
            {"created": result.created, "updated": result.updated, "rejected": result.rejected}
        )


def _schema(item, summary: str):
    return extend_schema(
        summary=summary,
        request=s.bulk_request_serializer(item),
        responses={200: s.BulkResultSerializer, **_ERRORS},
        tags=["bulk"],
    )


class AccountsBulk(_BulkView):
    upsert = staticmethod(upserts.accounts_upsert)

    @_schema(s.AccountItemSerializer, "Create or update accounts by external_id")
    def post(self, request: Request) -> Response:
        return self.handle_bulk(request)


class ContactsBulk(_BulkView):
    upsert = staticmethod(upserts.contacts_upsert)

    @_schema(s.ContactItemSerializer, "Create or update contacts by external_id or email")
    def post(self, request: Request) -> Response:
        return self.handle_bulk(request)


class SubscriptionsBulk(_BulkView):
    upsert = staticmethod(upserts.subscriptions_upsert)

    @_schema(s.SubscriptionItemSerializer, "Create or update subscription periods")
    def post(self, request: Request) -> Response:
        return self.handle_bulk(request)


class SurveyResponsesBulk(_BulkView):
    upsert = staticmethod(upserts.survey_responses_upsert)

    @_schema(s.SurveyResponseItemSerializer, "Create or update NPS and CSAT responses")
    def post(self, request: Request) -> Response:
        return self.handle_bulk(request)
