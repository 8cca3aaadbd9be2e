"""CSM notes: what a customer success manager writes on an account's timeline."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, TimelineEntry
from accounts.models.timeline import TimelineKind
from accounts.services._items import EARLIEST

NOTE_TITLE_MAX_LENGTH = TimelineEntry._meta.get_field("title").max_length
NOTE_BODY_MAX_LENGTH = 10_000
# Clocks drift and people write "meeting at 3pm" a little early; a note dated further ahead would
# sit at the top of the timeline as if it had already happened.
NOTE_FUTURE_TOLERANCE = dt.timedelta(hours=1)


def note_errors(*, body: str, title: str, occurred_at: dt.datetime | None) -> dict[str, list[str]]:
    """{field: [reason]} for a note that cannot be written; empty when it can."""
    errors: dict[str, list[str]] = {}
    for field, text, limit in [
        ("body", body, NOTE_BODY_MAX_LENGTH),
        ("title", title, NOTE_TITLE_MAX_LENGTH),
    ]:
        if not isinstance(text, str):
            errors[field] = ["Must be text."]
        elif len(text.strip()) > limit:
            errors[field] = [f"At most {limit} characters; got {len(text.strip())}."]
        elif "\x00" in text:  # PostgreSQL cannot store it
            errors[field] = ["Must not contain NUL characters."]
    if "body" not in errors and not body.strip():
        errors["body"] = ["Write something: a note cannot be blank."]
    if occurred_at is not None:
        if not isinstance(occurred_at, dt.datetime) or timezone.is_naive(occurred_at):
            errors["occurred_at"] = ["Must be a date and time with a time zone."]
        elif occurred_at > timezone.now() + NOTE_FUTURE_TOLERANCE:
            errors["occurred_at"] = ["Cannot be more than an hour in the future."]
        elif occurred_at.date() < EARLIEST:  # a typing error, e.g. year 25 for 2025
            errors["occurred_at"] = [f"Cannot be before {EARLIEST.isoformat()}."]
    return errors


@transaction.atomic
def note_add(
    *,
    account: Account,
    author,
    body: str,
    title: str = "",
    occurred_at: dt.datetime | None = None,
) -> TimelineEntry:
    """Write a CSM note on the account's timeline, dated occurred_at (default: now). The author
    is the person who wrote it, or None for an integration."""
    errors = note_errors(body=body, title=title, occurred_at=occurred_at)
    if errors:
        raise ValidationError(errors)
    return TimelineEntry.objects.create(
        account=account,
        kind=TimelineKind.NOTE,
        author=author if getattr(author, "pk", None) else None,
        title=title.strip(),
        body=body.strip(),
        occurred_at=occurred_at or timezone.now(),
    )
