import pytest
from celery.result import EagerResult

from tests.celery_worker import db_probe


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_tasks_against_the_test_database(django_user_model):
    django_user_model.objects.create(username="seen-by-the-worker")

    result = db_probe.delay("seen-by-the-worker")

    assert not isinstance(result, EagerResult)  # it went through Redis to the worker
    assert result.get(timeout=30) is True
    assert db_probe.delay("nobody").get(timeout=30) is False
