import datetime as dt

from django.db.models import Count, F, Q, QuerySet, Sum

from .models import Account, Contact, Subscription, TimelineEntry, UsageEvent
from .models.customers import AccountStatus

# API ordering names -> ORM expressions. Extend here (or add keys after annotating in a selector
# that wraps account_list) to make a new column sortable; `id` is always the last tie-breaker so
# that pages never repeat or skip rows.
ACCOUNT_ORDERINGS: dict[str, str] = {
    "name": "name",
    "external_id": "external_id",
    "mrr": "mrr",
    "arr": "mrr",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "customer_since": "customer_since",
    "churned_on": "churned_on",
    # Current health (health.AccountHealth, one row per account); accounts without one sort last.
    "health_score": "health__score",
    "churn_risk": "health__churn_risk",
}
# The current health and churn risk, joined in (LEFT JOIN health_accounthealth), never per row.
HEALTH_ANNOTATIONS = {
    "health_score": F("health__score"),
    "grade": F("health__grade"),
    "churn_risk": F("health__churn_risk"),
    "churn_model_version": F("health__churn_model_version"),
}


def book_summary(*, user) -> dict:
    """Headline figures of the accounts a user can see."""
    figures = Account.objects.visible_to(user).aggregate(
        accounts=Count("id"),
        active=Count("id", filter=Q(status=AccountStatus.ACTIVE)),
        churned=Count("id", filter=Q(status=AccountStatus.CHURNED)),
        mrr=Sum("mrr", filter=Q(status=AccountStatus.ACTIVE), default=0),
    )
    figures["arr"] = figures["mrr"] * 12
    return figures


def accounts_visible(*, user) -> QuerySet[Account]:
    """The accounts a caller may read: an integration token with the read scope reads the whole
    book; a person sees what Account.objects.visible_to allows."""
    if getattr(user, "token", None) is not None:
        return Account.objects.all()
    return Account.objects.visible_to(user)


def account_list(
    *,
    user,
    status: str = "",
    segment: str = "",
    owner: str = "",
    stage: str = "",
    q: str = "",
    ordering: list[str] | None = None,
) -> QuerySet[Account]:
    accounts = accounts_visible(user=user).select_related("owner").annotate(**HEALTH_ANNOTATIONS)
    if status:
        accounts = accounts.filter(status=status)
    if segment:
        accounts = accounts.filter(segment=segment)
    if owner:
        accounts = accounts.filter(owner__username=owner)
    if stage:
        accounts = accounts.filter(lifecycle_stage=stage)
    if q:
        accounts = accounts.filter(Q(name__icontains=q) | Q(external_id__icontains=q))
    return accounts.order_by(*account_ordering(ordering or ["name"]), "id")


def account_ordering(names: list[str]) -> list:
    """['-mrr', 'name'] -> ORM order_by terms, empty values last in either direction; names are
    checked against ACCOUNT_ORDERINGS by the API before they get here."""
    terms = []
    for name in names:
        column = F(ACCOUNT_ORDERINGS[name.lstrip("-")])
        descending = name.startswith("-")
        terms.append(column.desc(nulls_last=True) if descending else column.asc(nulls_last=True))
    return terms


def account_get(*, user, external_id: str) -> Account | None:
    if "\x00" in external_id:  # no external_id holds one, and PostgreSQL refuses it in a query
        return None
    accounts = accounts_visible(user=user).select_related("owner").annotate(**HEALTH_ANNOTATIONS)
    return accounts.filter(external_id=external_id).first()


def account_events(
    *,
    account: Account,
    event: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[UsageEvent]:
    """An account's raw usage events, newest first; `until` is exclusive."""
    events = UsageEvent.objects.filter(account=account)
    if event:
        events = events.filter(name=event)
    if since:
        events = events.filter(occurred_at__gte=since)
    if until:
        events = events.filter(occurred_at__lt=until)
    return events.order_by("-occurred_at", "-id")


def contact_list(*, user, account_external_id: str = "") -> QuerySet[Contact]:
    contacts = Contact.objects.filter(account__in=accounts_visible(user=user))
    if account_external_id:
        contacts = contacts.filter(account__external_id=account_external_id)
    return contacts.select_related("account").order_by("account__name", "name", "id")


def subscription_list(*, user, account_external_id: str = "", status: str = "") -> QuerySet:
    subscriptions = Subscription.objects.filter(account__in=accounts_visible(user=user))
    if account_external_id:
        subscriptions = subscriptions.filter(account__external_id=account_external_id)
    if status:
        subscriptions = subscriptions.filter(status=status)
    return subscriptions.select_related("account").order_by("-start_date", "-id")


def timeline_list(*, account: Account, kind: str = "") -> QuerySet[TimelineEntry]:
    """What happened on an account (CSM notes, meetings, system entries), newest first."""
    entries = TimelineEntry.objects.filter(account=account)
    if kind:
        entries = entries.filter(kind=kind)
    return entries.select_related("account", "author").order_by("-occurred_at", "-id")
