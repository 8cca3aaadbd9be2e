"""Celery tasks of the accounts app: thin adapters over services, safe to run twice."""

from accounts.services.revenue import account_revenue_refresh_due
from csp.celery import app


@app.task(acks_late=True)
def account_revenue_refresh_daily() -> int:
    """The beat schedule's daily refresh of accounts whose subscriptions started or ended."""
    return account_revenue_refresh_due()
