"""Output shapes of the v1 API, and the documented input shapes of the bulk endpoints. Bulk input
is checked by accounts.services.upserts (no per-item serializer on that path); the *Item
serializers below exist so that the OpenAPI schema describes what to send."""

from django.utils import timezone
from rest_framework import serializers

from accounts.models import Account, Contact, Subscription, TimelineEntry, UsageEvent
from accounts.models.customers import ContactRole, LifecycleStage
from accounts.models.subscriptions import SubscriptionStatus
from accounts.models.surveys import SurveyKind
from accounts.services.notes import NOTE_BODY_MAX_LENGTH, NOTE_TITLE_MAX_LENGTH

# Reads ----------------------------------------------------------------------------------------


class AccountSerializer(serializers.ModelSerializer):
    """Extend by adding fields here; values computed elsewhere (health score, churn risk) should
    arrive as queryset annotations from a selector, never as a query per row."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    tenure_days = serializers.SerializerMethodField()
    # Annotated by accounts.selectors (HEALTH_ANNOTATIONS) from health.AccountHealth.
    health_score = serializers.FloatField(read_only=True, default=None)
    grade = serializers.CharField(read_only=True, default=None)
    churn_risk = serializers.FloatField(read_only=True, default=None)
    churn_model_version = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Account
        fields = [
            "external_id",
            "name",
            "domain",
            "industry",
            "segment",
            "lifecycle_stage",
            "owner",
            "attributes",
            "status",
            "mrr",
            "arr",
            "customer_since",
            "churned_on",
            "churn_reason",
            "tenure_days",
            "health_score",
            "grade",
            "churn_risk",
            "churn_model_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_tenure_days(self, account: Account) -> int | None:
        """Days as a customer: from the first subscription to churn, or to today."""
        if account.customer_since is None:
            return None
        end = account.churned_on or timezone.now().date()
        return max((end - account.customer_since).days, 0)


class ContactSerializer(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.external_id", read_only=True)

    class Meta:
        model = Contact
        fields = [
            "external_id",
            "account_id",
            "email",
            "name",
            "title",
            "role",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SubscriptionSerializer(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.external_id", read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "external_id",
            "account_id",
            "plan",
            "quantity",
            "mrr",
            "currency",
            "billing_period_months",
            "start_date",
            "renewal_date",
            "end_date",
            "status",
            "churn_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class UsageEventSerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="name", read_only=True)

    class Meta:
        model = UsageEvent
        fields = [
            "event_id",
            "event",
            "user_id",
            "occurred_at",
            "value",
            "properties",
            "received_at",
        ]
        read_only_fields = fields


class TimelineEntrySerializer(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.external_id", read_only=True)
    author = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Empty for integrations and the system."
    )

    class Meta:
        model = TimelineEntry
        fields = [
            "id",
            "account_id",
            "kind",
            "title",
            "body",
            "author",
            "occurred_at",
            "created_at",
        ]
        read_only_fields = fields


# Notes ------------------------------------------------------------------------------------


class NoteInputSerializer(serializers.Serializer):
    """A CSM note: a body that is not blank, an optional title, and when it happened."""

    # Types and lengths here document the input; accounts.services.notes.note_add has the say.
    body = serializers.CharField(max_length=NOTE_BODY_MAX_LENGTH, allow_blank=True)
    title = serializers.CharField(
        max_length=NOTE_TITLE_MAX_LENGTH, required=False, allow_blank=True
    )
    occurred_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When it happened (ISO 8601); default now; at most an hour ahead.",
    )

    def to_internal_value(self, data):
        # A misspelt or unsupported key ("kind", "text") would otherwise be dropped without a word.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field. Known: {', '.join(self.fields)}."] for name in unknown}
                )
        return super().to_internal_value(data)


# Bulk writes (documentation of the input; see the module docstring) -----------------------


class AccountItemSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255, required=False, help_text="Required to create.")
    domain = serializers.CharField(required=False, allow_blank=True)
    industry = serializers.CharField(required=False, allow_blank=True)
    segment = serializers.CharField(required=False, allow_blank=True)
    lifecycle_stage = serializers.ChoiceField(LifecycleStage.values, required=False)
    owner = serializers.CharField(
        required=False, allow_null=True, help_text="Username or email of the owning CSM."
    )
    attributes = serializers.DictField(
        required=False,
        help_text="Numbers, strings or booleans. Replaces the stored attributes as a whole.",
    )


class ContactItemSerializer(serializers.Serializer):
    account_id = serializers.CharField(help_text="The account's external_id.")
    external_id = serializers.CharField(required=False, help_text="This or email is required.")
    email = serializers.EmailField(required=False)
    name = serializers.CharField(required=False, allow_blank=True)
    title = serializers.CharField(required=False, allow_blank=True)
    role = serializers.ChoiceField(ContactRole.values, required=False)
    last_seen_at = serializers.DateTimeField(required=False, allow_null=True)


class SubscriptionItemSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    account_id = serializers.CharField(required=False, help_text="Required to create.")
    plan = serializers.CharField(required=False, help_text="Required to create.")
    quantity = serializers.IntegerField(min_value=0, required=False, help_text="Seats.")
    mrr = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text="Required to create.",
    )
    currency = serializers.CharField(min_length=3, max_length=3, required=False)
    billing_period_months = serializers.IntegerField(min_value=1, max_value=60, required=False)
    start_date = serializers.DateField(required=False, help_text="Required to create.")
    renewal_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(
        required=False, allow_null=True, help_text="Empty while active; not before start_date."
    )
    status = serializers.ChoiceField(SubscriptionStatus.values, required=False)
    churn_reason = serializers.CharField(required=False, allow_blank=True)


class SurveyResponseItemSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    account_id = serializers.CharField(required=False, help_text="Required to create.")
    contact_id = serializers.CharField(
        required=False, allow_null=True, help_text="A contact's external_id."
    )
    contact_email = serializers.EmailField(required=False)
    kind = serializers.ChoiceField(SurveyKind.values, required=False)
    score = serializers.IntegerField(
        min_value=0, max_value=10, required=False, help_text="NPS 0-10, CSAT 1-5."
    )
    comment = serializers.CharField(required=False, allow_blank=True)
    responded_at = serializers.DateTimeField(required=False)


def bulk_request_serializer(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    name = item.__name__.replace("ItemSerializer", "BulkRequest")
    return type(name, (serializers.Serializer,), {"items": item(many=True, max_length=1000)})


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
