"""Checking one raw item of a bulk upsert: plain Python on parsed JSON, no queries, so that a
thousand items are checked in a tight loop. Clean values land in `values` (keyed by model column),
references to other records (external ids, logins) in `refs`, reasons in `errors`."""

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Model
from django.utils.dateparse import parse_date, parse_datetime

REQUIRED = "This field is required."
EMAIL_MAX_LENGTH = 254  # Contact.email (Django's EmailField); the validator allows up to 320
NUL = "Must not contain NUL characters."  # PostgreSQL stores none, in text or in jsonb
_SCALARS = (str, int, float, bool)
# Dates outside these years are typing errors, and the health features (pandas, nanosecond
# timestamps: 1677 to 2262) cannot hold them: one such date failed its whole recompute chunk.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2199, 12, 31)
_OUT_OF_RANGE = f"Must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}."


class Item:
    def __init__(self, index: int, raw: object):
        self.index = index
        self.raw = raw
        self.values: dict = {}
        self.refs: dict = {}
        self.errors: dict[str, list[str]] = {}

    @property
    def external_id(self):
        if "external_id" in self.values:
            return self.values["external_id"]
        return self.raw.get("external_id") if isinstance(self.raw, dict) else None

    def reject(self, name: str, reason: str) -> None:
        self.errors.setdefault(name, []).append(reason)

    def check_shape(self, allowed: set[str]) -> bool:
        if not isinstance(self.raw, dict):
            self.reject("non_field_errors", "Each item must be a JSON object.")
            return False
        for name in sorted(set(self.raw) - allowed):
            # Rejecting unknown keys catches misspelt fields that would otherwise be dropped.
            self.reject(name, f"Unknown field. Known fields: {', '.join(sorted(allowed))}.")
        return True

    def _take(self, name: str, required: bool = False) -> tuple[bool, object]:
        if name not in self.raw:
            if required:
                self.reject(name, REQUIRED)
            return False, None
        return True, self.raw[name]

    def text(
        self, name, *, model: type[Model] | None = None, required=False, blank=True, lower=False
    ) -> None:
        present, value = self._take(name, required)
        if not present:
            return
        if value is None:
            value = ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # numeric ids from source systems are fine as text
        if not isinstance(value, str):
            return self.reject(name, "Must be a string.")
        value = value.strip().lower() if lower else value.strip()
        max_length = model._meta.get_field(name).max_length if model else 255
        if max_length and len(value) > max_length:
            return self.reject(name, f"Must be at most {max_length} characters.")
        if not value and (required or not blank):
            return self.reject(name, "May not be blank.")
        if "\x00" in value:
            return self.reject(name, NUL)
        self.values[name] = value

    def ref(self, name, *, required=False, nullable=False) -> None:
        """An external id or login naming another record; resolved later with one query."""
        present, value = self._take(name, required)
        if not present:
            return
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None or value == "":
            if nullable:
                self.refs[name] = None
                return
            return self.reject(name, "May not be blank.")
        if not isinstance(value, str):
            return self.reject(name, "Must be a string.")
        if "\x00" in value:
            return self.reject(name, NUL)
        self.refs[name] = value.strip()

    def email(self, name) -> None:
        present, value = self._take(name)
        if not present:
            return
        if value in (None, ""):
            self.values[name] = ""
            return
        if not isinstance(value, str):
            return self.reject(name, "Must be a string.")
        value = value.strip().lower()
        if len(value) > EMAIL_MAX_LENGTH:
            return self.reject(name, f"Must be at most {EMAIL_MAX_LENGTH} characters.")
        try:
            validate_email(value)
        except ValidationError:
            return self.reject(name, f"'{value}' is not a valid email address.")
        self.values[name] = value

    def choice(self, name, choices: list[str]) -> None:
        present, value = self._take(name)
        if present and value not in choices:
            return self.reject(name, f"Must be one of: {', '.join(choices)}.")
        if present:
            self.values[name] = value

    def integer(self, name, low: int, high: int) -> None:
        present, value = self._take(name)
        if not present:
            return
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return self.reject(name, f"Must be an integer from {low} to {high}.")
        self.values[name] = value

    def decimal(self, name, *, model: type[Model]) -> None:
        present, value = self._take(name)
        if not present:
            return
        column = model._meta.get_field(name)
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidOperation
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return self.reject(name, "Must be a number.")
        limit = Decimal(10) ** (column.max_digits - column.decimal_places)
        if not number.is_finite() or number < 0 or number >= limit:
            return self.reject(name, f"Must be a number from 0 to less than {limit}.")
        step = Decimal(1).scaleb(-column.decimal_places)
        self.values[name] = number.quantize(step, rounding=ROUND_HALF_UP)

    def currency(self, name) -> None:
        present, value = self._take(name)
        if not present:
            return
        code = value.strip() if isinstance(value, str) else ""
        if len(code) != 3 or not (code.isascii() and code.isalpha()):
            return self.reject(name, "Must be a 3-letter ISO 4217 code such as USD.")
        self.values[name] = value.strip().upper()

    def date(self, name, *, nullable=False) -> None:
        present, value = self._take(name)
        if not present:
            return
        if value is None and nullable:
            self.values[name] = None
            return
        parsed = _parse_moment(value)
        if parsed is None:
            return self.reject(name, "Must be an ISO 8601 date (YYYY-MM-DD).")
        if isinstance(parsed, dt.datetime):
            parsed = _in_utc(parsed)
            if parsed is None:
                return self.reject(name, _OUT_OF_RANGE)
            parsed = parsed.date()
        if not EARLIEST <= parsed <= LATEST:
            return self.reject(name, _OUT_OF_RANGE)
        self.values[name] = parsed

    def datetime(self, name, *, nullable=False) -> None:
        present, value = self._take(name)
        if not present:
            return
        if value is None and nullable:
            self.values[name] = None
            return
        parsed = _parse_moment(value)
        if parsed is None:
            return self.reject(name, "Must be an ISO 8601 date-time, e.g. 2025-06-01T12:00:00Z.")
        if not isinstance(parsed, dt.datetime):
            parsed = dt.datetime.combine(parsed, dt.time())
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts (+23:59).
        parsed = _in_utc(parsed)
        if parsed is None or not EARLIEST <= parsed.date() <= LATEST:
            return self.reject(name, _OUT_OF_RANGE)
        self.values[name] = parsed

    def attributes(self, name) -> None:
        present, value = self._take(name)
        if not present:
            return
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return self.reject(name, "Must be an object of numbers, strings or booleans.")
        bad = sorted(k for k, v in value.items() if not _is_scalar(v))
        if bad:
            return self.reject(
                name, f"Values must be numbers, strings or booleans: {', '.join(bad)}."
            )
        if any("\x00" in k or (isinstance(v, str) and "\x00" in v) for k, v in value.items()):
            return self.reject(name, "Keys and values must not contain NUL characters.")
        self.values[name] = value


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, _SCALARS)


def _in_utc(moment: dt.datetime) -> dt.datetime | None:
    """The moment in UTC (taken as UTC without an offset); None when that is beyond year 1 or
    9999, such as 0001-01-01T00:00:00+01:00."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        return None


def _parse_moment(value: object) -> dt.date | dt.datetime | None:
    if isinstance(value, dt.date):  # Python callers (the demo loader) may pass objects
        return value
    if not isinstance(value, str):
        return None
    value = value.strip()
    try:
        return parse_date(value) or parse_datetime(value)
    except ValueError:  # well formed but impossible, such as 2025-02-30
        return None
