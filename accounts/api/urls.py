from django.urls import path, register_converter
from django.urls.converters import PathConverter

from . import bulk, notes, reads
from .events import EventIngestView

# What may follow an account in the v1 API, health's routes (health/api/scores.py) included:
# csp/urls.py includes them after this module, so the detail route must leave them alone.
ACCOUNT_SUBRESOURCES = frozenset(
    {"events", "contacts", "subscriptions", "timeline", "notes", "health", "sentiment"}
)


class AccountDetailIdConverter(PathConverter):
    """An external_id with slashes allowed (integrations send ids such as `acme/eu`) that does not
    end in a sub-resource name: `accounts/acme/eu/events` is the events of `acme/eu`, never an
    account called `acme/eu/events`. The sub-resource routes take `<path:external_id>`."""

    def to_python(self, value: str) -> str:
        head, _, last = value.rpartition("/")
        if head and last in ACCOUNT_SUBRESOURCES:
            raise ValueError(f"'{last}' is a sub-resource of account '{head}'.")
        return value


register_converter(AccountDetailIdConverter, "account_detail_id")

urlpatterns = [
    path("events", EventIngestView.as_view(), name="events-ingest"),
    path("accounts/bulk", bulk.AccountsBulk.as_view(), name="api-accounts-bulk"),
    path("contacts/bulk", bulk.ContactsBulk.as_view(), name="api-contacts-bulk"),
    path("subscriptions/bulk", bulk.SubscriptionsBulk.as_view(), name="api-subscriptions-bulk"),
    path(
        "survey-responses/bulk",
        bulk.SurveyResponsesBulk.as_view(),
        name="api-survey-responses-bulk",
    ),
    path("accounts", reads.AccountList.as_view(), name="api-accounts"),
    path(
        "accounts/<account_detail_id:external_id>",
        reads.AccountDetail.as_view(),
        name="api-account",
    ),
    path(
        "accounts/<path:external_id>/events",
        reads.AccountEvents.as_view(),
        name="api-account-events",
    ),
    path(
        "accounts/<path:external_id>/contacts",
        reads.AccountContacts.as_view(),
        name="api-account-contacts",
    ),
    path(
        "accounts/<path:external_id>/subscriptions",
        reads.AccountSubscriptions.as_view(),
        name="api-account-subscriptions",
    ),
    path(
        "accounts/<path:external_id>/timeline",
        reads.AccountTimeline.as_view(),
        name="api-account-timeline",
    ),
    path(
        "accounts/<path:external_id>/notes", notes.AccountNotes.as_view(), name="api-account-notes"
    ),
    path("contacts", reads.ContactList.as_view(), name="api-contacts"),
    path("subscriptions", reads.SubscriptionList.as_view(), name="api-subscriptions"),
]
