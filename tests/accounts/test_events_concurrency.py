"""The same batch sent by several clients at once is stored once and counted once."""

import threading
import urllib.error
import urllib.request

import orjson
import pytest

from accounts.models import DailyUsage, DailyUser, UsageEvent
from accounts.services.tokens import api_token_create
from tests.accounts.test_event_rollups import assert_rollups_match_recount
from tests.factories import AccountFactory

SENDERS = 6


def send(url: str, key: str, body: bytes) -> dict:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return orjson.loads(response.read())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_resends_of_a_batch_store_each_event_once(live_server):
    externals = [AccountFactory(external_id=f"acc-{i}").external_id for i in range(5)]
    _, key = api_token_create(name="load", scopes=["events:write"])
    batch = [
        {
            "event_id": f"e-{i}",
            "account_id": externals[i % 5],
            "user_id": f"u-{i % 7}",
            "event": ["login", "export"][i % 2],
            "timestamp": f"2025-06-0{1 + i % 3}T10:00:00Z",
            "value": i % 4,
            "properties": {"i": i},
        }
        for i in range(600)
    ]
    body = orjson.dumps({"events": batch})
    url = f"{live_server.url}/api/v1/events"
    results: list[dict] = []
    failures: list[BaseException] = []
    start = threading.Barrier(SENDERS)

    def run():
        try:
            start.wait()
            results.append(send(url, key, body))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sum(r["accepted"] for r in results) == len(batch)
    assert all(r["accepted"] + r["duplicates"] == len(batch) for r in results)
    assert UsageEvent.objects.count() == len(batch)
    assert sum(DailyUsage.objects.values_list("event_count", flat=True)) == len(batch)
    assert DailyUser.objects.count() == len(
        {(e["account_id"], e["timestamp"][:10], e["event"], e["user_id"]) for e in batch}
    )
    assert_rollups_match_recount()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_keep_rollups_exact(live_server):
    AccountFactory(external_id="acme")
    _, key = api_token_create(name="load", scopes=["events:write"])
    url = f"{live_server.url}/api/v1/events"
    # Each sender's batch overlaps its neighbours' by half, in a different order.
    bodies = []
    for s in range(SENDERS):
        ids = list(range(s * 100, s * 100 + 200))
        if s % 2:
            ids.reverse()
        bodies.append(
            orjson.dumps(
                {
                    "events": [
                        {
                            "event_id": f"e-{i}",
                            "account_id": "acme",
                            "user_id": f"u-{i % 11}",
                            "event": "login",
                            "timestamp": f"2025-06-0{1 + i % 2}T10:00:00Z",
                            "value": 1.5,
                        }
                        for i in ids
                    ]
                }
            )
        )
    results: list[dict] = []
    start = threading.Barrier(SENDERS)

    def run(body: bytes):
        start.wait()
        results.append(send(url, key, body))

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    distinct = (SENDERS + 1) * 100
    assert len(results) == SENDERS
    assert sum(r["accepted"] for r in results) == distinct
    assert UsageEvent.objects.count() == distinct
    assert_rollups_match_recount()
