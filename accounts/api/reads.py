"""GET endpoints of the v1 API. Integration tokens with the read scope see the whole book; a
logged-in person sees the accounts Account.objects.visible_to allows (see accounts.selectors)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from accounts import selectors
from accounts.models import Account

from . import filters
from . import serializers as s
from .auth import HasScope, TokenRateThrottle

EXTERNAL_ID = OpenApiParameter(
    "external_id",
    str,
    OpenApiParameter.PATH,
    description="The account's external_id; it may contain '/' (as is or encoded as %2F).",
)
_NOT_FOUND = {404: OpenApiResponse(s.ErrorSerializer, description="Unknown or not visible.")}
_BAD_QUERY = {400: OpenApiResponse(s.ErrorSerializer, description="Invalid query parameter.")}


class _ReadView(generics.GenericAPIView):
    required_scope = "read"
    permission_classes = [HasScope]
    throttle_classes = [TokenRateThrottle]


def account_or_404(request: Request, external_id: str) -> Account:
    account = selectors.account_get(user=request.user, external_id=external_id)
    if account is None:
        raise NotFound(f"No account with external_id '{external_id}' is visible to you.")
    return account


@extend_schema(
    parameters=[filters.AccountQuery], responses={200: s.AccountSerializer, **_BAD_QUERY}
)
class AccountList(_ReadView, generics.ListAPIView):
    serializer_class = s.AccountSerializer

    def get_queryset(self):
        query = filters.AccountQuery.parse(self.request.query_params)
        return selectors.account_list(user=self.request.user, **query)


@extend_schema(parameters=[EXTERNAL_ID], responses={200: s.AccountSerializer, **_NOT_FOUND})
class AccountDetail(_ReadView, generics.RetrieveAPIView):
    serializer_class = s.AccountSerializer

    def get_object(self) -> Account:
        return account_or_404(self.request, self.kwargs["external_id"])


@extend_schema(
    parameters=[EXTERNAL_ID, filters.EventQuery],
    responses={200: s.UsageEventSerializer, **_BAD_QUERY, **_NOT_FOUND},
)
class AccountEvents(_ReadView, generics.ListAPIView):
    serializer_class = s.UsageEventSerializer

    def get_queryset(self):
        query = filters.EventQuery.parse(self.request.query_params)
        account = account_or_404(self.request, self.kwargs["external_id"])
        return selectors.account_events(account=account, **query)


@extend_schema(
    parameters=[EXTERNAL_ID, filters.NestedQuery],
    responses={200: s.ContactSerializer, **_NOT_FOUND},
)
class AccountContacts(_ReadView, generics.ListAPIView):
    serializer_class = s.ContactSerializer

    def get_queryset(self):
        filters.NestedQuery.parse(self.request.query_params)
        account = account_or_404(self.request, self.kwargs["external_id"])
        return selectors.contact_list(
            user=self.request.user, account_external_id=account.external_id
        )


@extend_schema(
    parameters=[EXTERNAL_ID, filters.NestedQuery],
    responses={200: s.SubscriptionSerializer, **_NOT_FOUND},
)
class AccountSubscriptions(_ReadView, generics.ListAPIView):
    serializer_class = s.SubscriptionSerializer

    def get_queryset(self):
        filters.NestedQuery.parse(self.request.query_params)
        account = account_or_404(self.request, self.kwargs["external_id"])
        return selectors.subscription_list(
            user=self.request.user, account_external_id=account.external_id
        )


@extend_schema(
    parameters=[EXTERNAL_ID, filters.TimelineQuery],
    responses={200: s.TimelineEntrySerializer, **_BAD_QUERY, **_NOT_FOUND},
)
class AccountTimeline(_ReadView, generics.ListAPIView):
    serializer_class = s.TimelineEntrySerializer

    def get_queryset(self):
        query = filters.TimelineQuery.parse(self.request.query_params)
        account = account_or_404(self.request, self.kwargs["external_id"])
        return selectors.timeline_list(account=account, **query)


@extend_schema(
    parameters=[filters.ContactQuery], responses={200: s.ContactSerializer, **_BAD_QUERY}
)
class ContactList(_ReadView, generics.ListAPIView):
    serializer_class = s.ContactSerializer

    def get_queryset(self):
        query = filters.ContactQuery.parse(self.request.query_params)
        return selectors.contact_list(
            user=self.request.user, account_external_id=query.get("account_id", "")
        )


@extend_schema(
    parameters=[filters.SubscriptionQuery], responses={200: s.SubscriptionSerializer, **_BAD_QUERY}
)
class SubscriptionList(_ReadView, generics.ListAPIView):
    serializer_class = s.SubscriptionSerializer

    def get_queryset(self):
        query = filters.SubscriptionQuery.parse(self.request.query_params)
        return selectors.subscription_list(
            user=self.request.user,
            account_external_id=query.get("account_id", ""),
            status=query.get("status", ""),
        )
