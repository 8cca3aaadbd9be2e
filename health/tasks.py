"""Celery tasks of the health app: thin adapters that take ids and dates, fetch again and call one
service. All of them are safe to run twice (acks_late means a lost worker's task runs again)."""

import datetime as dt
import gc
import logging
from contextlib import contextmanager

from celery import Task
from django.db import InterfaceError, OperationalError

from csp.celery import app
from health.services import recompute

logger = logging.getLogger(__name__)

# A dropped connection, a deadlock or a lock timeout is worth retrying; a bug is not.
RETRY_ON = (OperationalError, InterfaceError)
MAX_RETRIES = 5


class RecomputeChunkTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Called once retries are exhausted (or at once for an error not worth retrying).
        job_id = kwargs.get("job_id", args[0] if args else None)
        if job_id is not None:
            recompute.job_fail(job_id=job_id, error=recompute.error_text(exc))


@app.task(
    base=RecomputeChunkTask,
    acks_late=True,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)
def recompute_chunk(job_id: str, as_of_iso: str, account_ids: list[int], chunk_index: int) -> int:
    """Recompute health and churn risk for one chunk of accounts; returns the accounts done."""
    with garbage_collection_paused():
        chunk = recompute.recompute_chunk_run(
            job_id=job_id,
            chunk_index=chunk_index,
            as_of=dt.date.fromisoformat(as_of_iso),
            account_ids=account_ids,
        )
    return chunk.accounts if chunk else 0


@contextmanager
def garbage_collection_paused():
    """A chunk builds hundreds of thousands of short-lived rows and tuples but hardly any
    reference cycles; the collections they trigger found nothing and cost about a tenth of a
    chunk. Paused for the chunk, a collection runs once after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(1)


@app.task(acks_late=True)
def health_recompute_daily() -> str:
    """The beat schedule's full recompute for today; returns the job id."""
    return str(recompute.health_recompute().pk)


@app.task(acks_late=True)
def health_recompute_incremental_run() -> str:
    """The beat schedule's incremental recompute; returns the job id."""
    return str(recompute.health_recompute_incremental().pk)


@app.task(acks_late=True)
def churn_model_retrain() -> str:
    """The beat schedule's weekly retraining as of today; returns the job id."""
    return str(recompute.churn_model_retrain().pk)
