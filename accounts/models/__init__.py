from .customers import Account, Contact, LifecycleStage
from .subscriptions import Subscription
from .surveys import SurveyResponse
from .timeline import TimelineEntry
from .tokens import ApiToken
from .usage import DailyUsage, DailyUser, UsageEvent

__all__ = [
    "Account",
    "ApiToken",
    "Contact",
    "DailyUsage",
    "DailyUser",
    "LifecycleStage",
    "Subscription",
    "SurveyResponse",
    "TimelineEntry",
    "UsageEvent",
]
