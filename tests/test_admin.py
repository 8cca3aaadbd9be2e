"""Django admin: every model of CSP's apps is there for staff, and the computed rows explain
themselves (a snapshot's measures, a prediction's drivers) in words."""

import datetime as dt

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from accounts.models import Subscription
from health.models import HealthScore, Job
from health.services.churn import churn_model_train
from health.services.recompute import health_recompute
from tests.factories import UserFactory
from tests.health.churn_history import make_history

pytestmark = pytest.mark.django_db

CSP_APPS = ["accounts", "health", "playbooks", "touchmodel"]
TODAY = dt.date(2025, 6, 30)


def test_every_csp_model_is_in_the_admin_on_its_own_or_inline():
    models = [m for name in CSP_APPS for m in apps.get_app_config(name).get_models()]
    inline = {i.model for a in admin.site._registry.values() for i in a.inlines}
    assert models
    assert [m.__name__ for m in models if m not in admin.site._registry and m not in inline] == []


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_every_changelist_opens_for_staff(staff_client):
    for model in admin.site._registry:
        if model._meta.app_label in CSP_APPS:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert staff_client.get(url).status_code == 200, url


def test_snapshots_and_predictions_read_in_words(
    staff_client, settings, django_capture_on_commit_callbacks
):
    settings.CHURN_MIN_CHURNS = 5
    make_history(start=dt.date(2024, 1, 1), today=TODAY)
    assert churn_model_train(as_of=TODAY, horizon_days=90).status == "trained"
    with django_capture_on_commit_callbacks(execute=True):
        health_recompute(as_of=TODAY)
    assert Subscription.objects.exists()
    score = HealthScore.objects.filter(as_of=TODAY).first()
    page = staff_client.get(reverse("admin:health_healthscore_change", args=[score.pk]))
    assert page.status_code == 200
    assert f"{score.measures[0]['label']}: raw" in page.content.decode()
    assert " risk by " in page.content.decode()
    job = Job.objects.get()
    assert staff_client.get(reverse("admin:health_job_change", args=[job.pk])).status_code == 200
