import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from accounts.services.notes import note_add
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_note_is_stored_trimmed_on_the_accounts_timeline():
    account, author = AccountFactory(), UserFactory()
    when = dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.UTC)
    note = note_add(
        account=account, author=author, body=" Call \n", title=" QBR ", occurred_at=when
    )
    assert (note.kind, note.body, note.title, note.author, note.occurred_at) == (
        "note",
        "Call",
        "QBR",
        author,
        when,
    )
    assert list(account.timeline.all()) == [note]


def test_an_author_who_is_not_a_stored_person_is_left_empty():
    note = note_add(account=AccountFactory(), author=AnonymousUser(), body="From the CRM")
    assert note.author is None


def test_every_bad_field_is_reported_at_once_and_nothing_is_written():
    account = AccountFactory()
    with pytest.raises(ValidationError) as caught:
        note_add(
            account=account,
            author=None,
            body=" ",
            title="t" * 256,
            occurred_at=dt.datetime(2025, 6, 1, 9, 30),  # no time zone
        )
    assert set(caught.value.message_dict) == {"body", "title", "occurred_at"}
    assert not account.timeline.exists()


def test_a_note_dated_more_than_an_hour_ahead_is_refused():
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=5)
    with pytest.raises(ValidationError) as caught:
        note_add(account=AccountFactory(), author=None, body="Later", occurred_at=ahead)
    assert "future" in caught.value.message_dict["occurred_at"][0]


def test_a_note_dated_before_1900_is_refused_as_a_typing_error():
    year_25 = dt.datetime(25, 6, 1, 9, 30, tzinfo=dt.UTC)
    with pytest.raises(ValidationError) as caught:
        note_add(account=AccountFactory(), author=None, body="QBR", occurred_at=year_25)
    assert caught.value.message_dict["occurred_at"] == ["Cannot be before 1900-01-01."]
