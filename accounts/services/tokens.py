import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from accounts.models.tokens import TokenScope


class UnknownScope(ValueError):
    pass


@transaction.atomic
def api_token_create(*, name: str, scopes: list[str], created_by=None) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored and never shown again."""
    unknown = sorted(set(scopes) - set(TokenScope.values))
    if unknown:
        raise UnknownScope(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(TokenScope.values)}."
        )
    key = "csp_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        prefix=key[:12],
        key_hash=ApiToken.hash_key(key),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
