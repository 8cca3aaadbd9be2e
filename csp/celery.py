"""The Celery app. Queue names live in one enum; the beat schedule lives here."""

import enum
import gc
import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init, worker_ready
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csp.settings")

app = Celery("csp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Queue(enum.StrEnum):
    DEFAULT = "celery"
    SCORING = "scoring"


app.conf.task_default_queue = Queue.DEFAULT.value
# Declared up front so that a worker started without -Q consumes every queue; a deployment that
# wants dedicated scoring machines starts them with `-Q scoring` and the others with `-Q celery`.
app.conf.task_queues = [KombuQueue(queue.value) for queue in Queue]
# Health work (recomputes, retraining) is heavy and batch-like: its own queue keeps it from
# delaying the short tasks on the default queue.
app.conf.task_routes = {"health.tasks.*": {"queue": Queue.SCORING.value}}
app.conf.beat_schedule = {}


def crontab_from_setting(expression: str) -> crontab:
    """Five crontab fields, "minute hour day-of-month month day-of-week", in UTC."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"Expected 5 crontab fields (min hour dom month dow), got {expression!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


def beat_schedule() -> dict:
    """Accounts' revenue facts refreshed for the new day (subscriptions that started or ended),
    full recompute daily, incremental every few minutes, churn model retraining weekly (by
    default on Sunday before the daily recompute, so that day's scores use the new model)."""
    from django.conf import settings

    return {
        "accounts-revenue-refresh": {
            "task": "accounts.tasks.account_revenue_refresh_daily",
            "schedule": crontab_from_setting(settings.ACCOUNT_REVENUE_REFRESH_CRON),
        },
        "health-full-recompute": {
            "task": "health.tasks.health_recompute_daily",
            "schedule": crontab_from_setting(settings.HEALTH_FULL_RECOMPUTE_CRON),
        },
        "health-incremental-recompute": {
            "task": "health.tasks.health_recompute_incremental_run",
            "schedule": timedelta(minutes=settings.HEALTH_INCREMENTAL_MINUTES),
        },
        "churn-model-retrain": {
            "task": "health.tasks.churn_model_retrain",
            "schedule": crontab_from_setting(settings.HEALTH_CHURN_RETRAIN_CRON),
        },
    }


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, **kwargs) -> None:
    # Settings are read only once Celery has loaded them: csp/__init__.py imports this module
    # while Django's settings are still being imported.
    sender.conf.beat_schedule = beat_schedule()


@worker_ready.connect
@worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    """Move everything the worker loaded at start (Django, pandas, scikit-learn) out of the
    garbage collector's reach: a full collection then scans only what tasks create. Sent in the
    main process (solo and threads pools) and in each prefork child."""
    gc.collect()
    gc.freeze()
