"""Helpers for the bulk upsert API tests: sending batches and building items."""


def send(client, kind: str, items, status: int = 200) -> dict:
    response = client.post(f"/api/v1/{kind}/bulk", {"items": items}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def errors_of(body: dict, index: int) -> dict:
    return next(r["errors"] for r in body["rejected"] if r["index"] == index)


def post_raw(client, kind: str, body: str):
    return client.post(f"/api/v1/{kind}/bulk", data=body, content_type="application/json")


def subscription(**fields) -> dict:
    return {
        "external_id": "s1",
        "account_id": "acme",
        "plan": "pro",
        "mrr": "500",
        "start_date": "2025-01-01",
        **fields,
    }


def response(**fields) -> dict:
    return {
        "external_id": "r1",
        "account_id": "acme",
        "kind": "nps",
        "score": 9,
        "responded_at": "2025-06-01T10:00:00Z",
        **fields,
    }
