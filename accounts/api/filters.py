"""Query parameters of the read endpoints, checked up front so that a bad value is a 400 naming
the parameter, never a silently ignored filter."""

from rest_framework import serializers

from accounts.models.customers import AccountStatus, LifecycleStage
from accounts.models.subscriptions import SubscriptionStatus
from accounts.models.timeline import TimelineKind
from accounts.selectors import ACCOUNT_ORDERINGS

_MOMENTS = ["iso-8601", "%Y-%m-%d"]


class _Query(serializers.Serializer):
    page_size = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    page = serializers.IntegerField(min_value=1, required=False)

    def to_internal_value(self, data):
        # Reject parameters we do not know: a typo such as ?segmnt=smb would otherwise list
        # everything without a word.
        unknown = sorted(set(data) - set(self.fields) - {"format"})
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [f"Unknown parameter. Known: {', '.join(sorted(self.fields))}."]
                    for name in unknown
                }
            )
        return super().to_internal_value(data)

    @classmethod
    def parse(cls, query_params) -> dict:
        query = cls(data={k: query_params.get(k) for k in query_params})
        query.is_valid(raise_exception=True)
        values = dict(query.validated_data)
        values.pop("page", None)
        values.pop("page_size", None)
        return values


class AccountQuery(_Query):
    status = serializers.ChoiceField(AccountStatus.values, required=False)
    segment = serializers.CharField(required=False)
    owner = serializers.CharField(required=False, help_text="The owning CSM's username.")
    stage = serializers.ChoiceField(LifecycleStage.values, required=False)
    q = serializers.CharField(required=False, help_text="Part of the name or external_id.")
    ordering = serializers.CharField(
        required=False,
        help_text="Comma-separated; prefix '-' for descending. One of: "
        + ", ".join(ACCOUNT_ORDERINGS),
    )

    def validate_ordering(self, value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name.lstrip("-") not in ACCOUNT_ORDERINGS]
        if unknown or not names:
            raise serializers.ValidationError(
                f"Cannot order by {', '.join(unknown) or 'nothing'}. "
                f"Choose from: {', '.join(ACCOUNT_ORDERINGS)} (prefix '-' for descending)."
            )
        return names


class EventQuery(_Query):
    event = serializers.CharField(required=False, help_text="Only events with this name.")
    since = serializers.DateTimeField(
        required=False, input_formats=_MOMENTS, help_text="Occurred at or after (ISO 8601)."
    )
    until = serializers.DateTimeField(
        required=False, input_formats=_MOMENTS, help_text="Occurred before (ISO 8601)."
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") and attrs.get("until") and attrs["until"] <= attrs["since"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class ContactQuery(_Query):
    account_id = serializers.CharField(required=False, help_text="The account's external_id.")


class SubscriptionQuery(_Query):
    account_id = serializers.CharField(required=False, help_text="The account's external_id.")
    status = serializers.ChoiceField(SubscriptionStatus.values, required=False)


class TimelineQuery(_Query):
    kind = serializers.ChoiceField(
        TimelineKind.values, required=False, help_text="Only entries of this kind."
    )


class NestedQuery(_Query):
    """Paging only: the account is in the path."""
