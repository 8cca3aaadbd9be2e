"""Recomputes of health scores and churn risk, split into chunks of accounts for Celery workers.

A recompute creates a Job, picks the accounts paying at its as-of date and, once the transaction
commits, sends one task per chunk as a Celery group, so more workers finish it proportionally
faster. Each chunk runs the steps in `recompute_chunk_run`; a finished chunk leaves a JobChunk row
(unique per job and index), from which progress and the job's success are derived, so a chunk
delivered twice neither writes duplicates nor counts twice. With CELERY_TASK_ALWAYS_EAGER (the
embedded default) the same path runs in-process.
"""

import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from functools import partial
from uuid import UUID

from celery import group
from celery.exceptions import Retry
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Account, Subscription, SurveyResponse
from health.features import account_feature_frame, paying_at
from health.models import Job, JobChunk, JobKind, JobStatus, SentimentOverride
from health.services.churn import churn_model_train, churn_risk_compute
from health.services.scores import health_scores_compute

logger = logging.getLogger(__name__)

# Ingestion updates Account.last_event_received_at at most once a minute per account, so an
# incremental run looks back this far before the previous run's start: recomputing an account
# twice is harmless, missing one is not.
INCREMENTAL_OVERLAP = dt.timedelta(minutes=2)
# A chunk costs about 65 ms whatever its size (queries, task message, pandas set-up) plus about
# 0.15 ms per account: below a few hundred accounts, splitting a job further only adds overhead.
MIN_CHUNK_SIZE = 500
SMALL_JOB_CHUNKS = 8
RECOMPUTE_KINDS = (JobKind.RECOMPUTE, JobKind.RECOMPUTE_INCREMENTAL)
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


def health_recompute(
    *,
    as_of: dt.date | None = None,
    account_ids: Sequence[int] | None = None,
    requested_by=None,
) -> Job:
    """Start a recompute of health and churn risk as of a date (default today) for every paying
    account, or for the given ones that are paying then. Returns the queued Job."""
    now = timezone.now()
    as_of = as_of or now.date()
    ids = _paying_ids(as_of=as_of, account_ids=account_ids)
    params = {"as_of": as_of.isoformat(), "accounts": len(ids), "incremental": False}
    if account_ids is None and as_of == now.date():
        # A full recompute for today is also a baseline for the next incremental run.
        params["until"] = now.isoformat()
    return _job_start(
        kind=JobKind.RECOMPUTE, as_of=as_of, ids=ids, params=params, user=requested_by
    )


def health_recompute_incremental(*, requested_by=None) -> Job:
    """Recompute, for today, the accounts that received events or whose subscriptions, surveys,
    sentiment overrides or attributes changed since the last successful run (full or incremental)
    started. Without any earlier run every paying account is recomputed."""
    now = timezone.now()
    since = _incremental_since()
    changed = None if since is None else sorted(_changed_since(since))
    ids = _paying_ids(as_of=now.date(), account_ids=changed)
    params = {
        "as_of": now.date().isoformat(),
        "accounts": len(ids),
        "incremental": True,
        "since": since.isoformat() if since else None,
        "until": now.isoformat(),
    }
    return _job_start(
        kind=JobKind.RECOMPUTE_INCREMENTAL,
        as_of=now.date(),
        ids=ids,
        params=params,
        user=requested_by,
    )


def recompute_chunk_run(
    *, job_id: UUID | str, chunk_index: int, as_of: dt.date, account_ids: Sequence[int]
) -> JobChunk | None:
    """Run one chunk's steps and record it. Safe to run twice: every step replaces what it wrote
    for (account, as_of), and the JobChunk row is written once. Returns None for a deleted job."""
    if not Job.objects.filter(pk=job_id).exists():
        logger.warning(
            "Recompute chunk %s of job %s: the job no longer exists", chunk_index, job_id
        )
        return None
    Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    started = time.monotonic()
    ids = list(account_ids)
    with transaction.atomic():
        _jit_off_for_this_transaction()
        # The steps of a recompute, in order. Later issues add here, after churn risk (which they
        # read): 3. the touch model's tier assignment, 4. playbook evaluation.
        # One feature frame for both steps: building it is the chunk's main read. Churn risk
        # first, so the current-health row is written once, with the score and the risk.
        frame = account_feature_frame(as_of=as_of, account_ids=ids, usage_baseline=True)
        churn = churn_risk_compute(as_of=as_of, account_ids=ids, frame=frame)
        health_scores = health_scores_compute(
            as_of=as_of, account_ids=ids, frame=frame, churn=churn
        )
        churn_predictions = len(churn.account_ids) if churn else 0
        JobChunk.objects.bulk_create(
            [
                JobChunk(
                    job_id=job_id,
                    index=chunk_index,
                    accounts=len(ids),
                    health_scores=health_scores,
                    churn_predictions=churn_predictions,
                    elapsed_seconds=round(time.monotonic() - started, 3),
                )
            ],
            ignore_conflicts=True,
        )
    _job_finish_if_complete(job_id)
    return JobChunk.objects.filter(job_id=job_id, index=chunk_index).first()


def _jit_off_for_this_transaction() -> None:
    """PostgreSQL compiles (JIT) any query its planner costs above jit_above_cost; the chunk's
    aggregates qualify but run for about 100 ms, and compiling them took 6-15 ms each, about
    6% of a chunk. SET LOCAL ends with the transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def job_fail(*, job_id: UUID | str, error: str) -> bool:
    """Mark an unfinished job failed with the error; a finished job keeps its outcome. Returns
    whether this call failed it."""
    updated = Job.objects.filter(pk=job_id, status__in=UNFINISHED).update(
        status=JobStatus.FAILED,
        error=error[:10_000],
        finished_at=timezone.now(),
        result=_chunk_totals(job_id),
    )
    return bool(updated)


def job_wait(*, job_id: UUID | str, timeout: float = 3600, poll_seconds: float = 0.5) -> Job:
    """Block until the job has finished (for commands and benchmarks; the API polls instead).
    Raises TimeoutError with the job's progress if it has not finished in time."""
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.annotate(chunks_done=Count("chunks")).get(pk=job_id)
        if job.is_finished:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"job {job_id} still {job.status} after {timeout:.0f}s "
                f"({job.chunks_done}/{job.chunks_total} chunks)"
            )
        time.sleep(poll_seconds)


def churn_model_retrain(*, as_of: dt.date | None = None, horizon_days: int | None = None) -> Job:
    """Train a new churn model as of a date (default today) and record it as a job, so a failed
    weekly retraining (for example too few churns to learn from) is visible, not just logged."""
    as_of = as_of or timezone.now().date()
    kwargs = (
        {"as_of": as_of} if horizon_days is None else {"as_of": as_of, "horizon_days": horizon_days}
    )
    job = Job.objects.create(
        kind=JobKind.CHURN_TRAIN,
        params={"as_of": as_of.isoformat(), "horizon_days": horizon_days},
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
    )
    try:
        model = churn_model_train(**kwargs)
    except Exception as exc:
        job_fail(job_id=job.pk, error=error_text(exc))
        raise
    job.status = JobStatus.SUCCEEDED
    job.finished_at = timezone.now()
    # Too little churn history is an outcome, not a failure: the model row says so.
    job.result = {
        "model_version": model.version,
        "model_status": model.status,
        "message": model.message,
        "churn_count": model.churn_count,
    }
    job.save(update_fields=["status", "finished_at", "result"])
    return job


def _paying_ids(*, as_of: dt.date, account_ids: Sequence[int] | None) -> list[int]:
    rows = Subscription.objects.filter(paying_at(as_of))
    if account_ids is None:
        return _distinct_account_ids(rows)
    wanted = sorted(set(account_ids))
    # Bounded IN lists: SQLite limits bound parameters per statement.
    batches = [wanted[i : i + 5000] for i in range(0, len(wanted), 5000)]
    return sorted(
        {pk for batch in batches for pk in _distinct_account_ids(rows.filter(account_id__in=batch))}
    )


def _distinct_account_ids(subscriptions) -> list[int]:
    return list(
        subscriptions.order_by("account_id").values_list("account_id", flat=True).distinct()
    )


def _changed_since(since: dt.datetime) -> set[int]:
    """Accounts with events, or edits to them, their subscriptions, surveys or sentiment
    overrides, since `since`. One flat query per source: a single query OR-ing correlated
    EXISTS over every account took 1.2 s at 100,000 accounts, most of an incremental run."""
    changed = set(
        Account.objects.filter(
            Q(last_event_received_at__gte=since) | Q(updated_at__gte=since)
        ).values_list("pk", flat=True)
    )
    sources = [
        Subscription.objects.filter(updated_at__gte=since),
        SurveyResponse.objects.filter(created_at__gte=since),
        SentimentOverride.objects.filter(Q(created_at__gte=since) | Q(revoked_at__gte=since)),
    ]
    for rows in sources:
        changed.update(rows.values_list("account_id", flat=True).distinct().order_by())
    return changed


def _incremental_since() -> dt.datetime | None:
    last = (
        Job.objects.filter(
            kind__in=RECOMPUTE_KINDS, status=JobStatus.SUCCEEDED, params__has_key="until"
        )
        .order_by("-created_at")
        .values_list("params", flat=True)
        .first()
    )
    if not last or not last.get("until"):
        return None
    return dt.datetime.fromisoformat(last["until"]) - INCREMENTAL_OVERLAP


def _job_start(*, kind: str, as_of: dt.date, ids: list[int], params: dict, user) -> Job:
    size = _chunk_size(len(ids))
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    params = {**params, "chunk_size": size}
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            params=params,
            chunks_total=len(chunks),
            requested_by=user if getattr(user, "pk", None) else None,
        )
        if chunks:
            # Robust: a chunk that fails in eager mode has already failed the job; it must not
            # turn the caller's request into a 500.
            transaction.on_commit(partial(_dispatch, job.pk, as_of, chunks), robust=True)
        else:
            _job_finish_if_complete(job.pk)
    job.refresh_from_db()
    return job


def _chunk_size(accounts: int) -> int:
    """HEALTH_CHUNK_SIZE, but a small job (an incremental run) is still cut into up to
    SMALL_JOB_CHUNKS pieces of at least MIN_CHUNK_SIZE, so that every worker takes a share."""
    size = max(1, settings.HEALTH_CHUNK_SIZE)
    return min(size, max(MIN_CHUNK_SIZE, math.ceil(accounts / SMALL_JOB_CHUNKS)))


def _dispatch(job_id: UUID, as_of: dt.date, chunks: list[list[int]]) -> None:
    from health.tasks import recompute_chunk

    signatures = [
        recompute_chunk.s(str(job_id), as_of.isoformat(), ids, index)
        for index, ids in enumerate(chunks)
    ]
    if recompute_chunk.app.conf.task_always_eager:
        _run_in_process(job_id, signatures)
        return
    try:
        group(signatures).apply_async()
    except Exception as exc:
        # The broker is unreachable: the job says so instead of staying queued for ever.
        job_fail(job_id=job_id, error=error_text(exc))
        logger.exception("Could not enqueue recompute job %s", job_id)


def _run_in_process(job_id: UUID, signatures: list) -> None:
    """The embedded default has no worker: each chunk runs here, one after the other. A chunk
    that fails fails the job (there is no second process to wait for, so no retry when errors
    propagate), and the other chunks still run: their scores are as valid as ever."""
    for signature in signatures:
        try:
            signature.apply()
        except Retry as exc:
            job_fail(job_id=job_id, error=error_text(exc.exc or exc))
        except Exception as exc:
            job_fail(job_id=job_id, error=error_text(exc))
            logger.exception("Recompute job %s: a chunk failed", job_id)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _job_finish_if_complete(job_id: UUID | str) -> None:
    job = Job.objects.annotate(done=Count("chunks")).filter(pk=job_id).first()
    if job is None:
        return
    if job.status == JobStatus.FAILED:
        # Chunks other than the failed one still count in what the job reports it wrote.
        Job.objects.filter(pk=job_id).update(result=_chunk_totals(job_id))
        return
    if job.done < job.chunks_total:
        return
    now = timezone.now()
    result = _chunk_totals(job_id)
    result["elapsed_seconds"] = round((now - job.created_at).total_seconds(), 3)
    # Conditional: when two workers finish the last chunks together, both may get here; the
    # first update wins and a failed job stays failed.
    Job.objects.filter(pk=job_id, status__in=UNFINISHED).update(
        status=JobStatus.SUCCEEDED,
        started_at=job.started_at or now,
        finished_at=now,
        result=result,
    )


def _chunk_totals(job_id: UUID | str) -> dict:
    totals = JobChunk.objects.filter(job_id=job_id).aggregate(
        chunks=Count("pk"),
        accounts=Sum("accounts"),
        health_scores=Sum("health_scores"),
        churn_predictions=Sum("churn_predictions"),
    )
    return {key: value or 0 for key, value in totals.items()}
