from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html_join

from .models import (
    AccountHealth,
    ChurnModel,
    HealthScore,
    Job,
    JobChunk,
    Scorecard,
    ScorecardMeasure,
    ScorecardVersion,
    SentimentOverride,
)
from .scoring.definition import measure_errors
from .services.churn import prediction_drivers
from .services.scores import (
    scorecard_publish,
    sentiment_override_add,
    sentiment_override_errors,
    sentiment_override_revoke,
)

_MEASURE_FIELDS = [
    "name",
    "label",
    "feature",
    "weight",
    "mapping",
    "direction",
    "low",
    "high",
    "thresholds",
]


class ScorecardMeasureForm(forms.ModelForm):
    class Meta:
        model = ScorecardMeasure
        fields = [*_MEASURE_FIELDS, "position"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        for field, reason in measure_errors({f: data.get(f) for f in _MEASURE_FIELDS}).items():
            self.add_error(field if field in self.fields else None, reason)
        return data


class ScorecardMeasureFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not kept:
            raise ValidationError("A scorecard needs at least one measure.")
        if not any((f.cleaned_data.get("weight") or 0) > 0 for f in kept):
            raise ValidationError("At least one measure needs a weight above 0.")


class ScorecardMeasureInline(admin.TabularInline):
    model = ScorecardMeasure
    form = ScorecardMeasureForm
    formset = ScorecardMeasureFormSet
    extra = 0


class ScorecardForm(forms.ModelForm):
    class Meta:
        model = Scorecard
        fields = [
            "name",
            "description",
            "priority",
            "is_default",
            "is_active",
            "segments",
            "tiers",
            "green_threshold",
            "yellow_threshold",
            "sentiment_weight",
        ]

    def clean(self):
        data = super().clean()
        green, yellow = data.get("green_threshold"), data.get("yellow_threshold")
        if green is not None and yellow is not None and not 0 <= yellow <= green <= 100:
            self.add_error("yellow_threshold", "Needs 0 <= yellow <= green <= 100.")
        if (data.get("sentiment_weight") or 0) < 0:
            self.add_error("sentiment_weight", "Must be at least 0.")
        return data


@admin.register(Scorecard)
class ScorecardAdmin(admin.ModelAdmin):
    """Every save publishes a new immutable version when the definition changed; scores keep
    pointing at the version they were computed with."""

    form = ScorecardForm
    inlines = [ScorecardMeasureInline]
    list_display = [
        "name",
        "priority",
        "is_default",
        "is_active",
        "segments",
        "tiers",
        "latest_version",
    ]
    list_editable = []

    @admin.display(description="Version")
    def latest_version(self, scorecard: Scorecard):
        latest = scorecard.versions.order_by("-number").first()
        return latest.number if latest else "-"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        version = scorecard_publish(scorecard=form.instance, user=request.user)
        messages.info(request, f"Scores now use {version}. Older scores keep their version.")


class ComputedAdmin(admin.ModelAdmin):
    """Rows that CSP computes: staff look, and may delete, but never type numbers in."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ScorecardVersion)
class ScorecardVersionAdmin(ComputedAdmin):
    list_display = ["scorecard", "number", "created_by", "created_at"]
    list_filter = ["scorecard"]
    readonly_fields = ["scorecard", "number", "definition", "created_by", "created_at"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(HealthScore)
class HealthScoreAdmin(ComputedAdmin):
    list_display = ["account", "as_of", "score", "grade", "churn_risk", "computed_at"]
    list_filter = ["grade", "as_of"]
    search_fields = ["account__name", "account__external_id"]
    raw_id_fields = ["account"]
    date_hierarchy = "as_of"
    exclude = ["parts", "churn_inputs"]
    readonly_fields = ["measures_explained", "drivers"]

    @admin.display(description="Churn-risk drivers")
    def drivers(self, obj: HealthScore) -> str:
        return format_html_join("\n", "<p>{}</p>", ((d["text"],) for d in prediction_drivers(obj)))

    @admin.display(description="Measures")
    def measures_explained(self, obj: HealthScore) -> str:
        return format_html_join(
            "\n",
            "<p>{}: raw {}, {} points × {}% = {}{}</p>",
            (
                (
                    m["label"],
                    m["raw_value"],
                    m["points"],
                    m["weight"],
                    m["contribution"],
                    " (missing: weight given to the others)" if m["missing"] else "",
                )
                for m in obj.measures
            ),
        )


@admin.register(AccountHealth)
class AccountHealthAdmin(ComputedAdmin):
    list_display = ["account", "as_of", "score", "grade", "churn_risk", "churn_model_version"]
    list_filter = ["grade"]
    search_fields = ["account__name", "account__external_id"]


@admin.register(ChurnModel)
class ChurnModelAdmin(ComputedAdmin):
    list_display = ["version", "as_of", "status", "algorithm", "horizon_days", "churn_count"]
    list_filter = ["status", "algorithm"]
    exclude = ["artifact"]


class JobChunkInline(admin.TabularInline):
    model = JobChunk
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(ComputedAdmin):
    list_display = ["id", "kind", "status", "chunks_total", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    inlines = [JobChunkInline]


@admin.register(JobChunk)
class JobChunkAdmin(ComputedAdmin):
    list_display = ["job", "index", "accounts", "health_scores", "churn_predictions"]


class SentimentOverrideForm(forms.ModelForm):
    class Meta:
        model = SentimentOverride
        fields = ["account", "grade", "points", "reason", "expires_on"]

    def clean(self):
        data = super().clean()
        errors = sentiment_override_errors(
            grade=data.get("grade") or "",
            points=data.get("points"),
            reason=data.get("reason") or "",
            expires_on=data.get("expires_on"),
        )
        for field, reasons in errors.items():
            if field not in self.errors:
                self.add_error(field, reasons)
        return data


@admin.register(SentimentOverride)
class SentimentOverrideAdmin(admin.ModelAdmin):
    """Overrides are added, or revoked, never edited: the score history must stay explainable."""

    form = SentimentOverrideForm
    list_display = [
        "account",
        "grade",
        "points",
        "author",
        "created_at",
        "expires_on",
        "revoked_at",
    ]
    list_filter = ["grade", "expires_on"]
    search_fields = ["account__name", "account__external_id", "reason"]
    raw_id_fields = ["account"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "account",
            "grade",
            "points",
            "reason",
            "expires_on",
            "author",
            "created_at",
            "revoked_at",
            "revoked_by",
        ]

    def save_model(self, request, obj, form, change):
        if change:
            return
        data = form.cleaned_data
        created = sentiment_override_add(
            account=data["account"],
            author=request.user,
            grade=data.get("grade") or "",
            points=data.get("points"),
            reason=data["reason"],
            expires_on=data["expires_on"],
        )
        obj.pk = created.pk
        obj.created_at = created.created_at

    @admin.action(description="Revoke the selected overrides")
    def revoke(self, request, queryset):
        for override in queryset.filter(revoked_at__isnull=True):
            sentiment_override_revoke(override=override, user=request.user)
        self.message_user(request, "Revoked.", messages.SUCCESS)
