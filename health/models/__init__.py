from .churn import *  # noqa: F403
from .jobs import *  # noqa: F403
from .scores import *  # noqa: F403
