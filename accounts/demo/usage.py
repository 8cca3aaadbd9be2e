"""Product usage events for the demo book, generated per block of accounts with numpy only.

Per account and day the story gives a health level h (1 = normal, falling before most churns)
and an engagement share (which share of paid seats are active users). Each seat holder has a
rank and a propensity: a user is engaged while their rank is below the engagement share and
their seat exists, and on each day is active with a probability set by propensity, weekday and
h. Every active user-day starts with a `login` and adds a Poisson number of feature events whose
mix also depends on h: key features fade faster than logins when an account disengages."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

FEATURES = np.array(
    [
        "dashboard_viewed",
        "report_created",
        "search_performed",
        "export_csv",
        "integration_synced",
        "automation_run",
        "user_invited",
        "api_call",
    ]
)
FEATURE_WEIGHT = np.array([3.0, 1.6, 1.8, 0.6, 0.8, 0.9, 0.15, 1.0])
# How steeply each feature fades with health: key features (reports, integrations, automations)
# are dropped first, which the feature-breadth measure should notice.
FEATURE_FADE = np.array([0.5, 1.8, 0.6, 1.0, 2.2, 2.5, 1.0, 1.5])
EVENT_NAMES = np.concatenate([["login"], FEATURES])
PROPERTIES = np.array(
    [
        "{}",
        '{"type": "pipeline"}',
        '{"type": "usage"}',
        '{"type": "revenue"}',
        '{"provider": "salesforce"}',
        '{"provider": "hubspot"}',
        '{"provider": "slack"}',
    ]
)
WEEKDAY_FACTOR = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.15, 0.1])  # Monday first
EXTRA_EVENTS_PER_ACTIVE_DAY = 1.4


def health(plan: dict[str, np.ndarray], day: np.ndarray) -> np.ndarray:
    """Health level per account (rows of `plan`) and day offset (broadcast against columns)."""
    start, bottom = plan["decay_start"][:, None], plan["decay_bottom"][:, None]
    floor, shape = plan["decay_floor"][:, None], plan["decay_shape"][:, None]
    fall = np.clip((day - start) / np.maximum(bottom - start, 1), 0.0, 1.0) ** shape
    h = 1.0 - (1.0 - floor) * fall
    recover_end = plan["recover_end"][:, None]
    rise = np.clip((day - bottom) / np.maximum(recover_end - bottom, 1), 0.0, 1.0)
    recovering = (plan["decay_kind"][:, None] == 2) & (day > bottom)
    return np.where(recovering, floor + (0.95 - floor) * rise, h)


def engagement(
    plan: dict[str, np.ndarray], day: np.ndarray, h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share of paid seats held by engaged users, and how much more often they use the product.
    Before an upgrade the share approaches 100% and use intensifies (the account is out of
    seats); after it the new seats dilute the share, which fills up again over two months."""
    base = plan["eng_base"][:, None]
    change, kind = plan["change"][:, None], plan["change_kind"][:, None]
    ramp = plan["ramp_days"][:, None]
    upgrade = kind == 1
    toward = np.clip((day - (change - ramp)) / ramp, 0.0, 1.0) * (day < change) * upgrade
    target = plan["ramp_target"][:, None]
    before = base + (target - base) * toward
    diluted = target * plan["seats0"][:, None] / plan["seats1"][:, None]
    fill = np.clip((day - change) / 60.0, 0.0, 1.0)
    after = diluted + (np.maximum(base, diluted) - diluted) * fill
    share = np.where(upgrade, np.where(day < change, before, after), base)
    downgraded = (kind == -1) & (day >= change)
    seat_ratio = plan["seats0"][:, None] / plan["seats1"][:, None]
    share = np.where(downgraded, np.minimum(1.0, base * seat_ratio), share)
    return np.clip(share * h**0.8, 0.0, 1.0), 1.0 + 1.2 * toward


def iter_event_frames(
    plan: pd.DataFrame,
    *,
    days: int,
    today: dt.date,
    seed: int,
    accounts_per_chunk: int = 1000,
    event_rate: float = 1.0,
) -> Iterator[pd.DataFrame]:
    """Usage events of the `days` full UTC days before today, one DataFrame per block of
    accounts (columns: event_id, account_id, user_id, event, timestamp (UTC), value, properties
    as a JSON string), grouped by account, then in day order. Identical for the same plan, seed
    and block size. `event_rate` scales the feature events per active user-day (benchmarks)."""
    for first in range(0, len(plan), accounts_per_chunk):
        block = plan.iloc[first : first + accounts_per_chunk]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7, first]))
        yield _block_events(block, first, days, today, rng, event_rate)


def _block_events(
    block: pd.DataFrame,
    first: int,
    days: int,
    today: dt.date,
    rng: np.random.Generator,
    event_rate: float,
) -> pd.DataFrame:
    p = {c: block[c].to_numpy() for c in block.columns}
    day = np.arange(-days, 0, dtype="int64")
    h = health(p, day[None, :]) * _weekly_noise(len(block), days, rng)
    share, intensity = engagement(p, day[None, :], h)
    alive = (day[None, :] >= p["start"][:, None]) & (day[None, :] < p["churn"][:, None])
    seats = np.where(
        day[None, :] >= p["change"][:, None], p["seats1"][:, None], p["seats0"][:, None]
    )
    ua, rank = _seat_holders(p)
    rank_share = rng.random(len(ua))
    # The champion (rank 0) is the most engaged user; others vary tenfold in propensity.
    rank_share[rank == 0] = 0.0
    propensity = 0.11 * rng.lognormal(0.0, 0.6, size=len(ua))
    propensity[rank == 0] *= 2.5
    # 1970-01-01 was a Thursday: +3 makes Monday 0.
    weekday = WEEKDAY_FACTOR[((np.datetime64(today, "D") + day).astype("int64") + 3) % 7]
    # Day-major (days x users) so that one stable sort by account yields account, day order.
    h_t = np.clip(h.T, 0.0, 1.2)
    engaged = (
        alive.T[:, ua] & (rank[None, :] < seats.T[:, ua]) & (rank_share[None, :] < share.T[:, ua])
    )
    drive = (0.35 + 0.65 * h_t) * intensity.T
    chance = np.minimum(weekday[:, None] * propensity[None, :] * drive[:, ua], 0.95)
    active = engaged & (rng.random(engaged.shape, dtype=np.float32) < chance)
    d_idx, u_idx = np.nonzero(active)
    order = np.argsort(ua[u_idx].astype(np.int32), kind="stable")
    d_idx, u_idx = d_idx[order], u_idx[order]
    users = _UserDays(account=ua[u_idx], user=u_idx, day=d_idx, h=h_t[d_idx, ua[u_idx]])
    labels = _user_labels(p["external_id"], ua, rank)
    return _events_frame(p, first, days, today, rng, event_rate, users, labels)


def _seat_holders(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every account's product users (as many as its largest seat count): account row, rank."""
    count = np.maximum(p["seats0"], p["seats1"])
    account = np.repeat(np.arange(len(count)), count)
    rank = np.arange(len(account)) - np.repeat(np.cumsum(count) - count, count)
    return account, rank


def _weekly_noise(n: int, days: int, rng: np.random.Generator) -> np.ndarray:
    """Week-to-week wobble per account (holidays, busy weeks), so trends need smoothing."""
    weeks = days // 7 + 2
    wobble = rng.lognormal(0.0, 0.18, size=(n, weeks))
    return np.repeat(wobble, 7, axis=1)[:, :days]


@dataclass
class _UserDays:
    """The active user-days of a block, grouped by account then day: the account row, the user
    (index into the block's seat holders), the day column and the health that day."""

    account: np.ndarray
    user: np.ndarray
    day: np.ndarray
    h: np.ndarray


def _events_frame(
    p: dict,
    first: int,
    days: int,
    today: dt.date,
    rng: np.random.Generator,
    event_rate: float,
    users: _UserDays,
    user_labels: list[str],
) -> pd.DataFrame:
    extra = rng.poisson(EXTRA_EVENTS_PER_ACTIVE_DAY * event_rate * (0.3 + 0.7 * users.h))
    per_day = 1 + extra
    account = np.repeat(users.account, per_day)
    is_login = np.zeros(len(account), dtype=bool)
    is_login[np.cumsum(per_day) - per_day] = True
    name = np.zeros(len(account), dtype=np.int8)  # 0 is login
    level = np.minimum((users.h * (_LEVELS / 1.2)).astype(np.int64), _LEVELS - 1)
    table_row = np.repeat(p["features"][users.account] * _LEVELS + level, extra)
    name[~is_login] = 1 + _feature_choice(table_row, rng)
    seconds = _timestamps(p, days, today, rng, users, per_day, is_login)
    value, props = _values(name, rng)
    return pd.DataFrame(
        {
            "event_id": _event_ids(first + account, account),
            "account_id": pd.Categorical.from_codes(account, categories=p["external_id"]),
            "user_id": pd.Categorical.from_codes(
                np.repeat(users.user, per_day), categories=user_labels
            ),
            "event": pd.Categorical.from_codes(name, categories=EVENT_NAMES),
            "timestamp": pd.to_datetime(seconds, unit="s", utc=True),
            "value": value,
            "properties": pd.Categorical.from_codes(props, categories=PROPERTIES),
        }
    )


_LEVELS = 48  # health is quantised for the feature mix: one table row per (adoption, level)


def _feature_table() -> np.ndarray:
    """Cumulative feature weights per (adopted-features bitmask, health level), normalised."""
    masks = np.arange(1 << len(FEATURES))
    adopted = (masks[:, None] >> np.arange(len(FEATURES))) & 1
    adopted[:, 0] = 1  # every account can view a dashboard
    h = (np.arange(_LEVELS) + 0.5) * (1.2 / _LEVELS)
    weight = adopted[:, None, :] * FEATURE_WEIGHT * h[None, :, None] ** FEATURE_FADE
    cum = np.cumsum(weight, axis=2)
    return (cum / cum[:, :, -1:]).reshape(-1, len(FEATURES)).astype(np.float32)


_FEATURE_CUM = _feature_table()


def _feature_choice(table_row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each feature event's name: the account's adopted features, weighted, key features fading
    with health."""
    u = rng.random(len(table_row), dtype=np.float32)
    picked = (u[:, None] > _FEATURE_CUM[table_row]).sum(axis=1)
    return np.minimum(picked, len(FEATURES) - 1).astype(np.int8)


def _timestamps(p, days, today, rng, users: _UserDays, per_day, is_login) -> np.ndarray:
    """Seconds since the epoch: one session per user-day in local business hours, the login
    first and the feature events within the next three hours, never past the UTC day."""
    start = np.clip(rng.normal(11.0, 2.5, size=len(per_day)), 6.0, 21.0) * 3600
    start += rng.random(len(per_day)) * 3600 - p["utc_offset"][users.account] * 3600.0
    session = np.repeat(np.mod(start, 86400.0), per_day)
    later = rng.uniform(20.0, 3 * 3600.0, size=len(session))
    later[is_login] = 0.0
    in_day = np.minimum(session + later, 86399).astype(np.int64)
    epoch_day = (np.datetime64(today, "D") - np.datetime64("1970-01-01", "D")).astype("int64")
    return (epoch_day - days + np.repeat(users.day, per_day)) * 86400 + in_day


def _values(name: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Numeric values (rows exported, API calls made, seconds an automation ran) and the
    properties of reports and integration syncs."""
    value = np.full(len(name), np.nan)
    code = {event: i for i, event in enumerate(EVENT_NAMES.tolist())}
    for event, draw in (
        ("export_csv", lambda k: np.round(rng.lognormal(5.0, 1.2, k))),
        ("api_call", lambda k: rng.poisson(40.0, k).astype(float)),
        ("automation_run", lambda k: np.round(rng.gamma(2.0, 15.0, k), 1)),
    ):
        where = np.flatnonzero(name == code[event])
        value[where] = draw(len(where))
    props = np.zeros(len(name), dtype=np.int8)
    report = np.flatnonzero(name == code["report_created"])
    props[report] = rng.integers(1, 4, len(report))
    sync = np.flatnonzero(name == code["integration_synced"])
    props[sync] = rng.integers(4, 7, len(sync))
    return value, props


def _event_ids(global_account: np.ndarray, account: np.ndarray) -> np.ndarray:
    """`ev<account number, 7 digits>-<sequence within the account, 7 digits>`, built as bytes so
    millions of ids cost milliseconds. Events must already be grouped by account."""
    starts = np.flatnonzero(np.r_[True, account[1:] != account[:-1]])
    seq = np.arange(len(account)) - np.repeat(starts, np.diff(np.r_[starts, len(account)]))
    digits = np.empty((len(account), 17), dtype=np.uint8)
    digits[:, 0], digits[:, 1], digits[:, 9] = ord("e"), ord("v"), ord("-")
    _write_digits(digits[:, 2:9], global_account)
    _write_digits(digits[:, 10:17], seq)
    return digits.view("S17").ravel().astype(str)


def _write_digits(out: np.ndarray, numbers: np.ndarray) -> None:
    rest = numbers.astype(np.uint32)
    for column in range(out.shape[1] - 1, -1, -1):
        rest, digit = np.divmod(rest, np.uint32(10))
        out[:, column] = digit + 48


def _user_labels(external: np.ndarray, account: np.ndarray, rank: np.ndarray) -> list[str]:
    """`<account external_id>-u<rank>` per seat holder: the same string is the contact's
    external_id, so a contact and their product activity line up."""
    return [f"{external[a]}-u{r:04d}" for a, r in zip(account.tolist(), rank.tolist(), strict=True)]
