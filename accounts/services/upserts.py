"""Bulk upserts of accounts, contacts, subscriptions and survey responses sent by integrations.

Each service takes raw items as parsed from JSON. It checks every item in memory, looks up the
existing rows with one query per kind, then writes with bulk_create / bulk_update in one
transaction. An item changes only the fields it carries (fields such as `name` are required only
to create), so an integration can send partial updates. A bad item never blocks the others: it
comes back in `rejected` with its index and {field: [reason]}. Resending the same items updates
and never duplicates. `attributes` REPLACES the stored object (send the whole object every time),
so a removed attribute does not linger.
"""

from collections import defaultdict
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model, Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Account, Contact, Subscription, SurveyResponse
from accounts.models.customers import ContactRole, LifecycleStage
from accounts.models.subscriptions import SubscriptionStatus
from accounts.models.surveys import SurveyKind

from ._bulk import (
    MAX_ITEMS,
    REQUIRED,
    BulkResult,
    TooManyItems,
    _account_pks,
    _Batch,
    _parse,
    _resolve_account,
    _write_with_retry,
)
from ._items import Item

__all__ = [
    "MAX_ITEMS",
    "REQUIRED",
    "BulkResult",
    "TooManyItems",
    "accounts_upsert",
    "contacts_upsert",
    "subscriptions_upsert",
    "survey_responses_upsert",
]

SCORE_RANGES = {SurveyKind.NPS: (0, 10), SurveyKind.CSAT: (1, 5)}
_MRR_COLUMN = Account._meta.get_field("mrr")
ACCOUNT_MRR_LIMIT = Decimal(10) ** (_MRR_COLUMN.max_digits - _MRR_COLUMN.decimal_places)
MRR_OVERFLOW = (
    f"The account's subscriptions would add up to an MRR of {ACCOUNT_MRR_LIMIT:,} or more, "
    "more than an account can hold."
)


# Accounts -----------------------------------------------------------------------------------

ACCOUNT_KEYS = {
    "external_id",
    "name",
    "domain",
    "industry",
    "segment",
    "lifecycle_stage",
    "owner",
    "attributes",
}


def _clean_account(item: Item) -> None:
    item.text("external_id", required=True)
    item.text("name", model=Account, blank=False)
    item.text("domain", model=Account, lower=True)
    item.text("industry", model=Account)
    item.text("segment", model=Account)
    item.choice("lifecycle_stage", LifecycleStage.values)
    item.ref("owner", nullable=True)
    item.attributes("attributes")


def accounts_upsert(*, items: list[dict]) -> BulkResult:
    """Create or update accounts by external_id; `owner` is a CSM's username or email."""
    parsed = _parse(items, _clean_account, ACCOUNT_KEYS)
    return _write_with_retry(lambda: _accounts_write(parsed))


def _accounts_write(parsed: list[Item]) -> BulkResult:
    batch = _Batch(parsed)
    ready = batch.ready()
    existing = Account.objects.select_for_update().in_bulk(
        [i.external_id for i in ready], field_name="external_id"
    )
    owners = _users_by_login({i.refs["owner"] for i in ready if i.refs.get("owner")})
    for item in ready:
        values = dict(item.values)
        if "owner" in item.refs:
            login = item.refs["owner"]
            owner = owners.get(login.lower()) if login else None
            if login and not isinstance(owner, int):
                batch.reject(
                    item, "owner", owner or f"No active user with username or email '{login}'."
                )
            values["owner_id"] = owner if isinstance(owner, int) else None
        row = existing.get(item.external_id)
        if row is None:
            batch.require(item, values, ["name"])
        batch.claim(item, item.external_id, "external_id")
        if batch.rejected(item):
            continue
        if row is None:
            batch.create(item, Account(**values))
        else:
            batch.update(item, row, values)
    batch.save(Account)
    return batch.result()


def _users_by_login(logins: set[str]) -> dict[str, int | str]:
    """Map each login (lower-cased) to a user pk, or to the reason it cannot be used."""
    if not logins:
        return {}
    lowered = {login.lower() for login in logins}
    users = (
        get_user_model()
        .objects.annotate(email_lower=Lower("email"), username_lower=Lower("username"))
        .filter(Q(username_lower__in=lowered) | Q(email_lower__in=lowered))
        .values("pk", "username_lower", "email_lower", "is_active")
    )
    by_username, by_email = {}, {}
    for user in users:
        by_username.setdefault(user["username_lower"], []).append(user)
        by_email.setdefault(user["email_lower"], []).append(user)
    found: dict[str, int | str] = {}
    for login in lowered:
        matches = by_username.get(login) or by_email.get(login, [])
        if len(matches) > 1:
            found[login] = f"'{login}' matches several users; send the exact username."
        elif matches and not matches[0]["is_active"]:
            found[login] = f"User '{login}' is deactivated."
        elif matches:
            found[login] = matches[0]["pk"]
    return found


# Contacts -----------------------------------------------------------------------------------

CONTACT_KEYS = {"external_id", "account_id", "email", "name", "title", "role", "last_seen_at"}


def _clean_contact(item: Item) -> None:
    item.ref("account_id", required=True)
    item.text("external_id")
    item.email("email")
    item.text("name", model=Contact)
    item.text("title", model=Contact)
    item.choice("role", ContactRole.values)
    item.datetime("last_seen_at", nullable=True)
    if not item.values.get("external_id"):
        item.values.pop("external_id", None)
        if not item.values.get("email") and "email" not in item.errors:
            item.reject("external_id", "Either external_id or email is required.")


def contacts_upsert(*, items: list[dict]) -> BulkResult:
    """Create or update contacts, keyed by external_id if given, else by (account, email)."""
    parsed = _parse(items, _clean_contact, CONTACT_KEYS)
    return _write_with_retry(lambda: _contacts_write(parsed))


def _contacts_write(parsed: list[Item]) -> BulkResult:
    batch = _Batch(parsed)
    ready = batch.ready()
    account_pks = _account_pks(ready)
    by_ext = Contact.objects.select_for_update().in_bulk(
        [i.external_id for i in ready if i.external_id], field_name="external_id"
    )
    emails = {i.values["email"] for i in ready if i.values.get("email")}
    emails |= {c.email for c in by_ext.values() if c.email}
    by_pair = {
        (c.account_id, c.email): c
        for c in Contact.objects.select_for_update().filter(
            account_id__in=set(account_pks.values()), email__in=emails
        )
    }
    for item in ready:
        values = dict(item.values)
        _resolve_account(batch, item, values, account_pks)
        if batch.rejected(item):
            continue
        row = _match_contact(batch, item, values, by_ext, by_pair)
        if batch.rejected(item):
            continue
        if row is None:
            batch.create(item, Contact(**values))
        else:
            batch.update(item, row, values)
    batch.save(Contact)
    return batch.result()


def _match_contact(batch: _Batch, item: Item, values: dict, by_ext: dict, by_pair: dict):
    account, ext = values["account_id"], item.external_id
    row = by_ext.get(ext) if ext else None
    email = values.get("email", row.email if row else "")
    holder = by_pair.get((account, email)) if email else None
    if row is None and holder is not None and holder.external_id in (None, ext):
        row = holder  # first known by email; an external_id adopts it
    if holder is not None and holder.pk != getattr(row, "pk", None):
        batch.reject(item, "email", f"Another contact of this account has the email '{email}'.")
    if row is not None:
        batch.claim(item, ("contact", row.pk), "external_id" if ext else "email")
    if ext:
        batch.claim(item, ("ext", ext), "external_id")
    if email:
        batch.claim(item, ("email", account, email), "email")
    return row


# Subscriptions ------------------------------------------------------------------------------

SUBSCRIPTION_KEYS = {
    "external_id",
    "account_id",
    "plan",
    "quantity",
    "mrr",
    "currency",
    "billing_period_months",
    "start_date",
    "renewal_date",
    "end_date",
    "status",
    "churn_reason",
}


def _clean_subscription(item: Item) -> None:
    item.text("external_id", required=True)
    item.ref("account_id")
    item.text("plan", model=Subscription, blank=False)
    item.integer("quantity", 0, 2_147_483_647)
    item.decimal("mrr", model=Subscription)
    item.currency("currency")
    item.integer("billing_period_months", 1, 60)
    item.date("start_date")
    item.date("renewal_date", nullable=True)
    item.date("end_date", nullable=True)
    item.choice("status", SubscriptionStatus.values)
    item.text("churn_reason", model=Subscription)


def subscriptions_upsert(*, items: list[dict]) -> BulkResult:
    """Create or update subscription periods by external_id, then refresh the revenue facts
    (status, MRR, churn date) of every account they touch, in the same transaction. Items that
    would take an account's MRR past what Account.mrr holds are rejected, the others stored."""
    from accounts.services.revenue import account_revenue_refresh

    parsed = _parse(items, _clean_subscription, SUBSCRIPTION_KEYS)
    overflowing: set[int] = set()

    def write() -> BulkResult:
        while True:
            with transaction.atomic():  # a savepoint: an overflow undoes this attempt only
                batch, touched = _subscriptions_write(parsed, overflowing)
                over = _accounts_over_mrr_limit(touched)
                if not over:
                    account_revenue_refresh(account_ids=touched)
                    return batch.result()
                transaction.set_rollback(True)
            # Ends: `touched` never holds a refused account, so each pass refuses new ones.
            overflowing.update(over)

    return _write_with_retry(write)


def _accounts_over_mrr_limit(account_ids: set[int]) -> set[int]:
    """Accounts whose subscriptions not ended yet add up to ACCOUNT_MRR_LIMIT or more: the
    largest MRR they can reach on any day from today, trials aside. Summed here, not in SQL,
    because SQLite would hand back a sum too large for the column as an unreadable decimal."""
    if not account_ids:
        return set()
    totals: dict[int, Decimal] = defaultdict(Decimal)
    today = timezone.now().date()
    rows = (
        Subscription.objects.filter(account_id__in=account_ids)
        .exclude(status=SubscriptionStatus.TRIALING)
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=today))
        .values_list("account_id", "mrr")
    )
    for account_id, mrr in rows:
        totals[account_id] += mrr
    return {pk for pk, total in totals.items() if total >= ACCOUNT_MRR_LIMIT}


def _subscriptions_write(parsed: list[Item], overflowing: set[int]) -> tuple[_Batch, set[int]]:
    batch = _Batch(parsed)
    ready = batch.ready()
    account_pks = _account_pks(ready)
    existing = Subscription.objects.select_for_update().in_bulk(
        [i.external_id for i in ready], field_name="external_id"
    )
    touched: set[int] = set()
    for item in ready:
        values = dict(item.values)
        _resolve_account(batch, item, values, account_pks)
        row = existing.get(item.external_id)
        if row is None:
            batch.require(item, values, ["account_id", "plan", "mrr", "start_date"])
        _check_subscription_dates(batch, item, {**_fields_of(row, values), **values})
        if {values.get("account_id"), getattr(row, "account_id", None)} & overflowing:
            batch.reject(item, "mrr", MRR_OVERFLOW)
        batch.claim(item, item.external_id, "external_id")
        if batch.rejected(item):
            continue
        if row is None:
            batch.create(item, Subscription(**values))
        else:
            touched.add(row.account_id)
            batch.update(item, row, values)
        touched.add(batch.rows[item.index].account_id)
    batch.save(Subscription)
    return batch, touched


def _fields_of(row: Model | None, values: dict) -> dict:
    if row is None:
        return {}
    return {
        name: getattr(row, name)
        for name in ("start_date", "end_date", "renewal_date", "status", "kind", "score")
        if hasattr(row, name)
    }


def _check_subscription_dates(batch: _Batch, item: Item, merged: dict) -> None:
    start = merged.get("start_date")
    for name in ("end_date", "renewal_date"):
        if start and merged.get(name) and merged[name] < start:
            batch.reject(item, name, f"Must not be before start_date ({start.isoformat()}).")
    if merged.get("status") == SubscriptionStatus.CANCELED and not merged.get("end_date"):
        batch.reject(item, "end_date", "Required when status is canceled.")


# Survey responses ---------------------------------------------------------------------------

SURVEY_KEYS = {
    "external_id",
    "account_id",
    "contact_id",
    "contact_email",
    "kind",
    "score",
    "comment",
    "responded_at",
}


def _clean_survey_response(item: Item) -> None:
    item.text("external_id", required=True)
    item.ref("account_id")
    item.ref("contact_id", nullable=True)
    item.email("contact_email")
    item.choice("kind", SurveyKind.values)
    item.integer("score", 0, 10)
    item.text("comment", model=SurveyResponse)
    item.datetime("responded_at")
    if item.refs.get("contact_id") and item.values.get("contact_email"):
        item.reject("contact_id", "Send contact_id or contact_email, not both.")


def survey_responses_upsert(*, items: list[dict]) -> BulkResult:
    """Create or update NPS/CSAT answers by external_id. An unknown contact_id is rejected; an
    unknown contact_email is kept without a contact (respondents are often not CRM contacts)."""
    parsed = _parse(items, _clean_survey_response, SURVEY_KEYS)
    return _write_with_retry(lambda: _survey_responses_write(parsed))


def _survey_responses_write(parsed: list[Item]) -> BulkResult:
    batch = _Batch(parsed)
    ready = batch.ready()
    account_pks = _account_pks(ready)
    existing = SurveyResponse.objects.select_for_update().in_bulk(
        [i.external_id for i in ready], field_name="external_id"
    )
    contacts = _survey_contacts(ready, account_pks)
    for item in ready:
        values = dict(item.values)
        email = values.pop("contact_email", None)
        _resolve_account(batch, item, values, account_pks)
        row = existing.get(item.external_id)
        if row is None:
            batch.require(item, values, ["account_id", "kind", "score", "responded_at"])
        merged = {**_fields_of(row, values), **values}
        account = values.get("account_id", row.account_id if row else None)
        _resolve_survey_contact(batch, item, values, account, email, contacts)
        low, high = SCORE_RANGES.get(merged.get("kind"), (0, 10))
        if merged.get("score") is not None and not low <= merged["score"] <= high:
            batch.reject(item, "score", f"Must be between {low} and {high} for {merged['kind']}.")
        batch.claim(item, item.external_id, "external_id")
        if batch.rejected(item):
            continue
        if row is None:
            batch.create(item, SurveyResponse(**values))
        else:
            batch.update(item, row, values)
    batch.save(SurveyResponse)
    return batch.result()


def _survey_contacts(ready: list[Item], account_pks: dict[str, int]) -> dict[object, Contact]:
    """Contacts named by the items, keyed by ("ext", external_id) and ("email", account, email)."""
    exts = {i.refs["contact_id"] for i in ready if i.refs.get("contact_id")}
    emails = {i.values["contact_email"] for i in ready if i.values.get("contact_email")}
    if not exts and not emails:
        return {}
    query = Q(external_id__in=exts) | Q(email__in=emails, account_id__in=set(account_pks.values()))
    if emails:  # an update may name only a contact_email: its account is the stored one
        query |= Q(
            email__in=emails,
            account__survey_responses__external_id__in=[
                i.external_id for i in ready if i.values.get("contact_email")
            ],
        )
    found: dict[object, Contact] = {}
    for contact in Contact.objects.filter(query).distinct():
        found[("ext", contact.external_id)] = contact
        found[("email", contact.account_id, contact.email)] = contact
    return found


def _resolve_survey_contact(batch, item, values, account, email, contacts) -> None:
    if "contact_id" in item.refs:
        ext = item.refs["contact_id"]
        contact = contacts.get(("ext", ext)) if ext else None
        if ext and contact is None:
            batch.reject(item, "contact_id", f"No contact with external_id '{ext}'.")
        elif contact is not None and contact.account_id != account:
            batch.reject(item, "contact_id", f"Contact '{ext}' belongs to another account.")
        values["contact_id"] = contact.pk if contact else None
    elif email is not None:
        contact = contacts.get(("email", account, email)) if email else None
        values["contact_id"] = contact.pk if contact else None
