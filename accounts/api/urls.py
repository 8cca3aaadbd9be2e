from django.urls import path

from . import bulk, reads
from .events import EventIngestView

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
    path("accounts/<str:external_id>", reads.AccountDetail.as_view(), name="api-account"),
    path(
        "accounts/<str:external_id>/events",
        reads.AccountEvents.as_view(),
        name="api-account-events",
    ),
    path(
        "accounts/<str:external_id>/contacts",
        reads.AccountContacts.as_view(),
        name="api-account-contacts",
    ),
    path(
        "accounts/<str:external_id>/subscriptions",
        reads.AccountSubscriptions.as_view(),
        name="api-account-subscriptions",
    ),
    path("contacts", reads.ContactList.as_view(), name="api-contacts"),
    path("subscriptions", reads.SubscriptionList.as_view(), name="api-subscriptions"),
]
