from django.db.models import Count, Q, Sum

from .models import Account
from .models.customers import AccountStatus


def book_summary(*, user) -> dict:
    """Headline figures of the accounts a user can see."""
    figures = Account.objects.visible_to(user).aggregate(
        accounts=Count("id"),
        active=Count("id", filter=Q(status=AccountStatus.ACTIVE)),
        churned=Count("id", filter=Q(status=AccountStatus.CHURNED)),
        mrr=Sum("mrr", filter=Q(status=AccountStatus.ACTIVE), default=0),
    )
    figures["arr"] = figures["mrr"] * 12
    return figures
