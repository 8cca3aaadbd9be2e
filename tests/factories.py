import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import Account, Contact, Subscription, SurveyResponse, UsageEvent


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"acc-{n}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    domain = factory.LazyAttribute(lambda a: f"{a.external_id}.example.com")
    segment = "smb"
    industry = "software"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    external_id = factory.Sequence(lambda n: f"con-{n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Sequence(lambda n: f"Person {n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    account = factory.SubFactory(AccountFactory)
    external_id = factory.Sequence(lambda n: f"sub-{n}")
    plan = "pro"
    quantity = 10
    mrr = Decimal("500.00")
    billing_period_months = 12
    start_date = dt.date(2025, 1, 1)
    renewal_date = dt.date(2026, 1, 1)


class SurveyResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurveyResponse

    account = factory.SubFactory(AccountFactory)
    external_id = factory.Sequence(lambda n: f"nps-{n}")
    kind = "nps"
    score = 9
    responded_at = factory.LazyFunction(lambda: dt.datetime(2025, 6, 1, tzinfo=dt.UTC))


class UsageEventFactory(factory.django.DjangoModelFactory):
    """For read-side tests only; ingestion tests go through the API or events_ingest."""

    class Meta:
        model = UsageEvent

    account = factory.SubFactory(AccountFactory)
    event_id = factory.Sequence(lambda n: f"evt-{n}")
    name = "login"
    occurred_at = factory.LazyFunction(lambda: dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    received_at = factory.LazyFunction(lambda: dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
