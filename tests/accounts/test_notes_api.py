import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import TimelineEntry
from accounts.services.notes import NOTE_BODY_MAX_LENGTH, NOTE_TITLE_MAX_LENGTH
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db

NOTES = "/api/v1/accounts/acme/notes"
TIMELINE = "/api/v1/accounts/acme/timeline"


@pytest.fixture
def csm():
    return UserFactory(username="carol")


@pytest.fixture
def account(csm):
    return AccountFactory(external_id="acme", owner=csm)


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def entry(account, kind="note", title="", days_ago=0, author=None) -> TimelineEntry:
    return TimelineEntry.objects.create(
        account=account,
        kind=kind,
        title=title,
        body=f"{kind} {title}",
        author=author,
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


# Writing a note --------------------------------------------------------------------------------


def test_a_csm_writes_a_note_on_their_account_and_signs_it(account, csm):
    before = timezone.now()
    response = session_client(csm).post(
        NOTES, {"body": "  Renewal call went well.  ", "title": "QBR"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["account_id"], body["kind"], body["author"]) == ("acme", "note", "carol")
    assert (body["title"], body["body"]) == ("QBR", "Renewal call went well.")
    note = TimelineEntry.objects.get(pk=body["id"])
    assert note.account == account and note.author == csm
    assert before <= note.occurred_at <= timezone.now()


def test_an_integration_posts_a_dated_note_without_an_author(account, token_client):
    response = token_client("accounts:write").post(
        NOTES, {"body": "Imported from the CRM", "occurred_at": "2025-06-01T09:30:00+02:00"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["author"] is None and body["title"] == ""
    assert body["occurred_at"] == "2025-06-01T07:30:00Z"
    assert TimelineEntry.objects.get().occurred_at == dt.datetime(2025, 6, 1, 7, 30, tzinfo=dt.UTC)


def test_a_note_dated_a_little_ahead_is_accepted_for_clock_drift(account, token_client):
    soon = (timezone.now() + dt.timedelta(minutes=30)).isoformat()
    response = token_client("accounts:write").post(
        NOTES, {"body": "Call", "occurred_at": soon}, format="json"
    )
    assert response.status_code == 201, response.content


_IN_TWO_HOURS = object()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "body"),
        ({"body": "   "}, "body"),
        ({"body": None}, "body"),
        ({"body": {"text": "hi"}}, "body"),
        ({"body": "x" * (NOTE_BODY_MAX_LENGTH + 1)}, "body"),
        ({"body": "a\x00b"}, "body"),
        ({"body": "ok", "title": "t" * (NOTE_TITLE_MAX_LENGTH + 1)}, "title"),
        ({"body": "ok", "title": None}, "title"),
        ({"body": "ok", "occurred_at": "soon"}, "occurred_at"),
        ({"body": "ok", "occurred_at": 12345}, "occurred_at"),
        ({"body": "ok", "occurred_at": "0001-01-01T00:00:00+05:00"}, "occurred_at"),
        ({"body": "ok", "occurred_at": "0025-06-01T09:30:00Z"}, "occurred_at"),
        ({"body": "ok", "occurred_at": _IN_TWO_HOURS}, "occurred_at"),
        ({"body": "ok", "kind": "meeting"}, "kind"),
        (["body", "ok"], "non_field_errors"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(account, token_client, payload, field):
    if isinstance(payload, dict) and payload.get("occurred_at") is _IN_TWO_HOURS:
        payload["occurred_at"] = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    response = token_client("accounts:write").post(NOTES, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not TimelineEntry.objects.exists()


def test_malformed_json_is_a_400(account, token_client):
    response = token_client("accounts:write").post(
        NOTES, data='{"body": ', content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "where"),
    [('{"body": "hi \\ud800"}', "body"), ('{"body": "hi", "\\udfff": 1}', "non_field_errors")],
)
def test_a_lone_surrogate_is_a_400_naming_where_not_a_crash(account, token_client, body, where):
    # Once parsed, it crashed the error response (an unknown key is echoed) or the write.
    response = token_client("accounts:write").post(
        NOTES, data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [where]
    assert not TimelineEntry.objects.exists()


def test_json_nested_too_deeply_for_python_is_a_400_not_a_crash(account, token_client):
    response = token_client("accounts:write").post(
        NOTES, data="[" * 100_000 + "]" * 100_000, content_type="application/json"
    )
    assert response.status_code == 400


def test_a_note_on_an_unknown_account_is_404(token_client):
    response = token_client("accounts:write").post(
        "/api/v1/accounts/ghost/notes", {"body": "hi"}, format="json"
    )
    assert response.status_code == 404 and "ghost" in response.json()["detail"]
    assert token_client("read").get("/api/v1/accounts/ghost/timeline").status_code == 404


def test_notes_need_a_login_or_a_token_with_accounts_write(account, token_client):
    note = {"body": "hi"}
    assert APIClient().post(NOTES, note, format="json").status_code == 401
    assert token_client("read").post(NOTES, note, format="json").status_code == 403
    response = token_client("events:write").post(NOTES, note, format="json")
    assert response.status_code == 403 and "accounts:write" in response.json()["detail"]
    assert not TimelineEntry.objects.exists()


def test_the_timeline_needs_a_login_or_a_token_with_read(account, token_client, csm):
    assert APIClient().get(TIMELINE).status_code == 401
    assert token_client("accounts:write").get(TIMELINE).status_code == 403
    assert token_client("read").get(TIMELINE).status_code == 200
    assert session_client(csm).get(TIMELINE).status_code == 200


def test_a_csm_can_neither_read_nor_write_the_timeline_of_an_account_they_cannot_see(account):
    stranger = UserFactory()
    client = session_client(stranger)
    assert client.post(NOTES, {"body": "hi"}, format="json").status_code == 404
    assert client.get(TIMELINE).status_code == 404
    assert not TimelineEntry.objects.exists()


def test_a_manager_writes_on_any_account_and_signs_the_note(account):
    manager = UserFactory(username="mona")
    manager.groups.add(Group.objects.create(name="Manager"))
    response = session_client(manager).post(NOTES, {"body": "Exec sponsor call"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["author"] == "mona"


# Reading the timeline -------------------------------------------------------------------------


def test_timeline_is_newest_first_by_when_it_happened(account, token_client):
    entry(account, title="last week", days_ago=7)
    entry(account, title="today", days_ago=0)
    entry(account, title="yesterday", days_ago=1)
    entry(AccountFactory(), title="another account")
    assert titles(token_client("read").get(TIMELINE)) == ["today", "yesterday", "last week"]


def test_timeline_is_filtered_by_kind(account, token_client):
    entry(account, kind="note", title="n1", days_ago=2)
    entry(account, kind="meeting", title="m1", days_ago=1)
    entry(account, kind="note", title="n2", days_ago=0)
    reader = token_client("read")
    assert titles(reader.get(f"{TIMELINE}?kind=note")) == ["n2", "n1"]
    assert titles(reader.get(f"{TIMELINE}?kind=meeting")) == ["m1"]
    for query, name in [("kind=memo", "kind"), ("knd=note", "knd")]:
        response = reader.get(f"{TIMELINE}?{query}")
        assert response.status_code == 400 and name in response.json()["errors"], query


def test_timeline_is_paginated_with_count_and_links(account, token_client):
    for day in range(5):
        entry(account, title=f"d{day}", days_ago=day)
    first = token_client("read").get(f"{TIMELINE}?page_size=2").json()
    assert first["count"] == 5 and first["previous"] is None and "page=2" in first["next"]
    assert [r["title"] for r in first["results"]] == ["d0", "d1"]


def test_a_posted_note_shows_at_the_top_of_the_timeline(account, csm):
    entry(account, title="older", days_ago=3)
    client = session_client(csm)
    client.post(NOTES, {"body": "Fresh", "title": "new"}, format="json")
    assert titles(client.get(TIMELINE)) == ["new", "older"]


def test_timeline_takes_a_constant_number_of_queries(
    account, token_client, django_assert_max_num_queries
):
    for day in range(20):
        entry(account, title=f"d{day}", days_ago=day, author=UserFactory())
    reader = token_client("read")
    with django_assert_max_num_queries(6):
        assert reader.get(TIMELINE).json()["count"] == 20


def test_schema_documents_the_timeline_and_notes(token_client):
    response = token_client("read").get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/accounts/{external_id}/timeline" in response.content
    assert b"/api/v1/accounts/{external_id}/notes" in response.content
