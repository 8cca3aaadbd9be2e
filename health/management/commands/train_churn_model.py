import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from health.models.churn import ChurnModelStatus
from health.services.churn import churn_model_train


class Command(BaseCommand):
    help = (
        "Train a churn-risk model on the history up to a date, backtest it and store it as a new "
        "model version. With too few churns it records that and trains nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--as-of",
            dest="as_of",
            help="YYYY-MM-DD; only data up to this date is used (default today).",
        )
        parser.add_argument(
            "--horizon-days",
            dest="horizon_days",
            type=int,
            default=settings.CHURN_HORIZON_DAYS,
            help="Predict churn within this many days (default 90, setting CHURN_HORIZON_DAYS).",
        )

    def handle(self, *args, as_of: str | None, horizon_days: int, **options) -> None:
        day = _parse_date(as_of) if as_of else timezone.now().date()
        if horizon_days < 7 or horizon_days > 730:
            raise CommandError("--horizon-days must be between 7 and 730.")
        model = churn_model_train(as_of=day, horizon_days=horizon_days)
        self.stdout.write(
            f"Churn model v{model.version} as of {model.as_of}, horizon {model.horizon_days} days: "
            f"{model.training_examples} examples from {model.training_accounts} accounts, "
            f"{model.churn_count} churns."
        )
        if model.status == ChurnModelStatus.INSUFFICIENT_HISTORY:
            self.stdout.write(self.style.WARNING(f"No model trained: {model.message}."))
            return
        self.stdout.write(f"Algorithm: {model.algorithm} ({len(model.features)} features)")
        self.stdout.write(_backtest_lines(model.backtest or {}))


def _backtest_lines(report: dict) -> str:
    if not report.get("available"):
        return f"Backtest: not available ({report.get('reason', 'no report')})."
    lead = report.get("lead_time_days")
    return "\n".join(
        [
            f"Backtest at cut-off {report['cutoff']}: {report['scored_accounts']} accounts scored, "
            f"{report['churned_accounts']} churned within {report['horizon_days']} days "
            f"(base rate {report['base_rate']:.1%}).",
            f"  AUC {_num(report['auc'], '.3f')}, top-decile lift {_num(report['lift'], '.2f')}, "
            f"Brier {_num(report['brier'], '.4f')}, "
            f"median lead time {'n/a' if lead is None else f'{lead:.0f} days'} "
            f"({report.get('flagged_churners', 0)} of {report['churned_accounts']} churners "
            "flagged).",
            "  Calibration (predicted → observed, count): "
            + "; ".join(
                f"{row['predicted']:.1%} → {row['observed']:.1%} ({row['count']})"
                for row in report.get("calibration", [])
            ),
            _stability_line(report.get("stability")),
        ]
    )


def _stability_line(stability: dict | None) -> str:
    if not stability or not stability.get("auc"):
        return "  Earlier cut-offs: not enough history to repeat the backtest."
    auc, lift = stability["auc"], stability["lift"] or {}
    return (
        f"  Across {stability['available']} of {stability['cutoffs']} cut-offs: "
        f"AUC {auc['min']:.3f}–{auc['max']:.3f} (mean {auc['mean']:.3f}), top-decile lift "
        f"{_num(lift.get('min'), '.2f')}–{_num(lift.get('max'), '.2f')}."
    )


def _num(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--as-of must be a date as YYYY-MM-DD, not {value!r}.") from exc
