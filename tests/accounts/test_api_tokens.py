from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services.tokens import api_token_create

pytestmark = pytest.mark.django_db


def create_token(*args: str) -> tuple[str, str]:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    return lines[-1], "\n".join(lines)


def client_with(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_created_token_is_alone_on_the_last_line_and_works_against_the_api():
    secret, _ = create_token("crm-sync", "--scope", "accounts:write", "--scope", "read")
    assert secret.startswith("csp_") and " " not in secret
    client = client_with(secret)
    response = client.post(
        "/api/v1/accounts/bulk", {"items": [{"external_id": "a1", "name": "A"}]}, format="json"
    )
    assert response.status_code == 200
    assert client.get("/api/v1/accounts/a1").status_code == 200
    assert sorted(ApiToken.objects.get().scopes) == ["accounts:write", "read"]


def test_only_the_hash_of_the_secret_is_stored():
    secret, _ = create_token("crm-sync", "--scope", "read")
    token = ApiToken.objects.get()
    stored = [str(getattr(token, f.attname)) for f in ApiToken._meta.fields]
    assert all(secret not in value for value in stored)
    assert token.key_hash == ApiToken.hash_key(secret)


def test_unknown_scope_is_refused_listing_the_known_ones():
    with pytest.raises(CommandError) as error:
        create_token("crm-sync", "--scope", "admin")
    assert "admin" in str(error.value) and "events:write" in str(error.value)
    assert not ApiToken.objects.exists()


def test_revoked_token_gets_401_by_prefix_or_by_name():
    by_prefix, output = create_token("first", "--scope", "read")
    by_name, _ = create_token("second", "--scope", "read")
    prefix = ApiToken.objects.get(name="first").prefix
    assert prefix in output
    call_command("revoke_api_token", prefix, stdout=StringIO())
    call_command("revoke_api_token", "second", stdout=StringIO())
    for secret in (by_prefix, by_name):
        response = client_with(secret).get("/api/v1/accounts")
        assert response.status_code == 401


def test_revoking_only_the_named_token_leaves_the_others_working():
    kept, _ = create_token("kept", "--scope", "read")
    create_token("dropped", "--scope", "read")
    call_command("revoke_api_token", "dropped", stdout=StringIO())
    assert client_with(kept).get("/api/v1/accounts").status_code == 200


def test_revoke_refuses_an_ambiguous_name_and_an_unknown_one():
    api_token_create(name="twin", scopes=["read"])
    api_token_create(name="twin", scopes=["read"])
    with pytest.raises(CommandError, match="matches 2"):
        call_command("revoke_api_token", "twin", stdout=StringIO())
    with pytest.raises(CommandError, match="No active token"):
        call_command("revoke_api_token", "ghost", stdout=StringIO())
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()
