"""Settings are chosen by the environment alone: DEBUG=0 switches on production hardening."""

from .base import *  # noqa: F403
from .base import DEBUG

if not DEBUG:
    from .production import *  # noqa: F403
