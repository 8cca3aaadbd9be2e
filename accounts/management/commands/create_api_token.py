from django.core.management.base import BaseCommand, CommandError

from accounts.models.tokens import TokenScope
from accounts.services.tokens import UnknownScope, api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for an integration and print it. The secret is shown once, alone on "
        "the last line (use `| tail -1` in scripts); only its hash is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="What the token is for, e.g. 'segment-prod'.")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            dest="scopes",
            help=f"Repeat for several. Known: {', '.join(TokenScope.values)}.",
        )

    def handle(self, *args, name: str, scopes: list[str], **options) -> None:
        if not name.strip():
            raise CommandError("The token needs a name.")
        try:
            token, secret = api_token_create(name=name.strip(), scopes=scopes)
        except UnknownScope as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Created token '{token.name}' (prefix {token.prefix}) with scopes "
            f"{', '.join(token.scopes)}. Store it now: it cannot be shown again."
        )
        self.stdout.write(secret)
