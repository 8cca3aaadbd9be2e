from django.contrib import admin, messages

from .models import (
    Account,
    ApiToken,
    Contact,
    DailyUsage,
    DailyUser,
    Subscription,
    SurveyResponse,
    TimelineEntry,
    UsageEvent,
)
from .services.tokens import api_token_create, api_token_revoke


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "email", "title", "role", "last_seen_at"]


SUBSCRIPTION_COLUMNS = [
    "external_id",
    "plan",
    "quantity",
    "mrr",
    "start_date",
    "renewal_date",
    "end_date",
    "status",
]


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = SUBSCRIPTION_COLUMNS


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "segment", "lifecycle_stage", "status", "mrr", "owner"]
    list_filter = ["status", "segment", "lifecycle_stage", "industry"]
    search_fields = ["name", "external_id", "domain"]
    readonly_fields = ["status", "mrr", "customer_since", "churned_on", "churn_reason"]
    raw_id_fields = ["owner"]
    inlines = [ContactInline, SubscriptionInline]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "account", "role", "last_seen_at"]
    list_filter = ["role"]
    search_fields = ["name", "email", "external_id", "account__name"]
    raw_id_fields = ["account"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [*SUBSCRIPTION_COLUMNS, "account"]
    list_filter = ["status", "plan", "billing_period_months"]
    search_fields = ["external_id", "account__name"]
    raw_id_fields = ["account"]


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "user_id", "occurred_at", "value", "received_at"]
    list_filter = ["name"]
    search_fields = ["event_id", "account__external_id", "user_id"]
    raw_id_fields = ["account"]
    show_full_result_count = False


@admin.register(DailyUsage)
class DailyUsageAdmin(admin.ModelAdmin):
    list_display = ["account", "day", "event_name", "event_count", "value_sum", "active_users"]
    list_filter = ["event_name"]
    raw_id_fields = ["account"]
    date_hierarchy = "day"
    show_full_result_count = False


@admin.register(DailyUser)
class DailyUserAdmin(admin.ModelAdmin):
    list_display = ["account", "day", "event_name", "user_id"]
    raw_id_fields = ["account"]
    show_full_result_count = False


@admin.register(SurveyResponse)
class SurveyResponseAdmin(admin.ModelAdmin):
    list_display = ["account", "kind", "score", "responded_at"]
    list_filter = ["kind"]
    raw_id_fields = ["account", "contact"]


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    list_display = ["account", "kind", "title", "author", "occurred_at"]
    list_filter = ["kind"]
    raw_id_fields = ["account"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "scopes", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, key = api_token_create(name=obj.name, scopes=obj.scopes, created_by=request.user)
        obj.pk, obj.key_hash, obj.prefix = token.pk, token.key_hash, token.prefix
        messages.warning(request, f"Copy this token now; it will not be shown again: {key}")

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
