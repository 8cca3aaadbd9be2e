from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken
from accounts.services.tokens import api_token_revoke


class Command(BaseCommand):
    help = "Revoke an API token, named by its prefix (csp_xxxxxxxx), its name or the full secret."

    def add_arguments(self, parser) -> None:
        parser.add_argument("token", metavar="PREFIX_OR_NAME")

    def handle(self, *args, token: str, **options) -> None:
        found = _active_tokens_matching(token.strip())
        if not found:
            raise CommandError(f"No active token has the prefix or name '{token}'.")
        if len(found) > 1:
            listing = ", ".join(f"{t.prefix} ({t.name})" for t in found)
            raise CommandError(
                f"'{token}' matches {len(found)} active tokens: {listing}. Give the prefix."
            )
        revoked = api_token_revoke(token=found[0])
        self.stdout.write(f"Revoked token '{revoked.name}' (prefix {revoked.prefix}).")


def _active_tokens_matching(text: str) -> list[ApiToken]:
    active = ApiToken.objects.filter(revoked_at__isnull=True)
    for lookup in ({"key_hash": ApiToken.hash_key(text)}, {"prefix": text}, {"name": text}):
        found = list(active.filter(**lookup))
        if found:
            return found
    return []
