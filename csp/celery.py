"""The Celery app. Queue names live in one enum; the beat schedule lives here."""

import enum
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csp.settings")

app = Celery("csp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Queue(enum.StrEnum):
    DEFAULT = "celery"
    SCORING = "scoring"


app.conf.task_default_queue = Queue.DEFAULT.value
app.conf.beat_schedule = {}
