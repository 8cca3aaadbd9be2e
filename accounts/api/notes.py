"""POST /api/v1/accounts/<external_id>/notes: a CSM (or an integration on their behalf) writes a
note on the account's timeline."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services.notes import note_add

from . import serializers as s
from .auth import HasScopeOrIsPerson, TokenRateThrottle, request_token
from .reads import EXTERNAL_ID, account_or_404


@extend_schema(
    parameters=[EXTERNAL_ID],
    request=s.NoteInputSerializer,
    responses={
        201: s.TimelineEntrySerializer,
        400: OpenApiResponse(s.ErrorSerializer, description="Invalid note; errors per field."),
        401: OpenApiResponse(s.ErrorSerializer, description="Neither a token nor a login."),
        403: OpenApiResponse(s.ErrorSerializer, description="The token lacks accounts:write."),
        404: OpenApiResponse(s.ErrorSerializer, description="Unknown or not visible."),
    },
)
class AccountNotes(APIView):
    required_scope = "accounts:write"
    permission_classes = [HasScopeOrIsPerson]
    throttle_classes = [TokenRateThrottle]

    def post(self, request: Request, external_id: str) -> Response:
        account = account_or_404(request, external_id)
        data = s.NoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # An integration has no person to name; a logged-in CSM signs their own note.
        author = None if request_token(request) else request.user
        try:
            entry = note_add(account=account, author=author, **data.validated_data)
        except DjangoValidationError as exc:
            raise DrfValidationError(exc.message_dict) from exc
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)
