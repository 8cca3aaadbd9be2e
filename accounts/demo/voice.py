"""The voice of the customer in the demo: NPS and CSAT answers, and CSM notes. NPS follows the
account's usage health and a latent satisfaction with plenty of noise: accounts heading to churn
give more detractor scores, but many of them still answer 8 or 9, and happy accounts have bad
days too."""

import datetime as dt

import numpy as np
import pandas as pd

from . import usage
from .dates import NEVER

NPS_EVERY_DAYS = 90
NPS_RESPONSE_RATE = 0.45
NPS_COMMENTS = {
    "detractor": [
        "Hard to get the team to use it.",
        "Reports are slow and we miss features.",
        "Too expensive for what we use.",
        "Support took days to answer.",
        "",
    ],
    "passive": [
        "Does the job.",
        "Good, but onboarding new people takes time.",
        "We'd like more integrations.",
        "",
    ],
    "promoter": [
        "The team relies on it every day.",
        "Great support and fast reports.",
        "Saved us hours every week.",
        "",
    ],
}


def surveys_frame(
    plan: pd.DataFrame,
    contacts: pd.DataFrame,
    days: int,
    today: dt.date,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Quarterly NPS waves answered by about 45% of live accounts, plus a few CSAT ratings."""
    p = {c: plan[c].to_numpy() for c in plan.columns}
    nps = _nps_answers(p, days, rng)
    csat = _csat_answers(p, days, rng)
    frame = pd.concat([nps.assign(kind="nps"), csat.assign(kind="csat")], ignore_index=True)
    return _with_contacts_and_text(frame, plan, contacts, today, rng)


def _nps_answers(p: dict, days: int, rng: np.random.Generator) -> pd.DataFrame:
    waves = days // NPS_EVERY_DAYS + 1
    n = len(p["start"])
    offset = rng.integers(0, NPS_EVERY_DAYS, n)
    wave_start = -days + offset[:, None] + NPS_EVERY_DAYS * np.arange(waves)[None, :]
    day = wave_start + rng.integers(0, 7, (n, waves))
    live = (day < 0) & (day >= p["start"][:, None] + 30) & (day < p["churn"][:, None])
    account, wave = np.nonzero(live & (rng.random(day.shape) < NPS_RESPONSE_RATE))
    day = day[account, wave]
    h = usage.health({k: v[account] for k, v in p.items()}, day[:, None])[:, 0]
    mean = 7.6 + 4.5 * (h - 0.85) + 1.1 * p["satisfaction"][account]
    score = np.clip(np.round(mean + rng.normal(0.0, 1.7, len(account))), 0, 10)
    return pd.DataFrame({"account": account, "day": day, "score": score.astype("int64")})


def _csat_answers(p: dict, days: int, rng: np.random.Generator) -> pd.DataFrame:
    """About one support-interaction rating a year per account, on a random day of its life."""
    account = np.repeat(np.arange(len(p["start"])), rng.poisson(0.9 * days / 365, len(p["start"])))
    start, end = p["start"][account], np.minimum(p["churn"][account], 0)
    day = start + np.floor(rng.random(len(account)) * (end - start)).astype("int64")
    keep = day >= -days
    account, day = account[keep], day[keep]
    h = usage.health({k: v[account] for k, v in p.items()}, day[:, None])[:, 0]
    mean = 4.1 + 0.8 * (h - 1.0) + 0.35 * p["satisfaction"][account]
    score = np.clip(np.round(mean + rng.normal(0, 0.8, len(account))), 1, 5)
    return pd.DataFrame({"account": account, "day": day, "score": score.astype("int64")})


def _with_contacts_and_text(frame, plan, contacts, today, rng) -> pd.DataFrame:
    """Who answered (any contact but billing), when, and what they wrote."""
    per_account = contacts.groupby("account_id", sort=False).size()
    counts = per_account.reindex(plan["external_id"]).to_numpy()[frame["account"].to_numpy()]
    position = np.floor(rng.random(len(frame)) * counts).astype("int64")
    position = np.where(position == 2, 0, position)  # billing rarely answers: the champion does
    external = plan["external_id"].to_numpy()[frame["account"].to_numpy()]
    band = np.select(
        [frame["score"] <= 6, frame["score"] <= 8], ["detractor", "passive"], "promoter"
    )
    band = np.where(
        frame["kind"] == "csat",
        np.select([frame["score"] <= 2, frame["score"] <= 3], ["detractor", "passive"], "promoter"),
        band,
    )
    pick = rng.integers(0, 5, len(frame))
    comments = [
        NPS_COMMENTS[b][i % len(NPS_COMMENTS[b])]
        for b, i in zip(band.tolist(), pick.tolist(), strict=True)
    ]
    seconds = frame["day"].to_numpy() * 86400 + rng.integers(8 * 3600, 20 * 3600, len(frame))
    responded = pd.Timestamp(today, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    out = pd.DataFrame(
        {
            "external_id": [
                f"{e}-{k}{i:03d}"
                for e, k, i in zip(external, frame["kind"].tolist(), range(len(frame)), strict=True)
            ],
            "account_id": external,
            "contact_id": [
                f"{e}-u{k:04d}" for e, k in zip(external, position.tolist(), strict=True)
            ],
            "kind": frame["kind"].to_numpy(),
            "score": frame["score"].to_numpy(),
            "comment": comments,
            "responded_at": responded,
        }
    )
    return out.sort_values(["account_id", "responded_at"], kind="stable").reset_index(drop=True)


def notes_frame(plan: pd.DataFrame, days: int, today: dt.date) -> pd.DataFrame:
    """A few CSM notes on owned accounts: kickoffs, reviews, risk flags, expansion talks and
    cancellations, written when the CSM would have noticed."""
    p = {c: plan[c].to_numpy() for c in plan.columns}
    parts = []
    for when, day, kind, title, body in _note_moments(p, days):
        keep = when & (p["owner"] != "") & (day < 0) & (day >= -days)
        parts.append(
            pd.DataFrame(
                {
                    "account_id": p["external_id"][keep],
                    "author": p["owner"][keep],
                    "kind": kind,
                    "title": title,
                    "body": np.broadcast_to(body, len(p["owner"]))[keep],
                    "day": day[keep],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    seconds = frame.pop("day").to_numpy() * 86400 + 15 * 3600
    frame["occurred_at"] = pd.Timestamp(today, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    return frame.sort_values(["account_id", "occurred_at"], kind="stable").reset_index(drop=True)


def _note_moments(p: dict, days: int) -> list[tuple]:
    """(which accounts, on which day, kind, title, body) for each kind of note."""
    moments = [
        (
            p["start"] > -days,
            p["start"] + 3,
            "meeting",
            "Kickoff call",
            "Agreed goals and the onboarding plan with the champion.",
        ),
        (
            (p["decay_kind"] > 0) & (p["decay_start"] + 28 < p["churn"]),
            p["decay_start"] + 28,
            "note",
            "Usage is dropping",
            "Fewer people logging in and the team stopped building reports. Reaching out.",
        ),
        (
            p["change_kind"] == 1,
            p["change"] - 14,
            "meeting",
            "Expansion conversation",
            "They are out of seats; discussed a larger plan.",
        ),
        (
            (p["churn"] <= 0) & (p["churn"] < NEVER),
            p["churn"] - 5,
            "note",
            "Cancellation confirmed",
            np.array([f"Customer will not renew. Reason given: {r}." for r in p["churn_reason"]]),
        ),
    ]
    for quarter in range(days // 90):
        review_day = -90 * quarter - 20
        live = (p["start"] < review_day - 10) & (p["churn"] > review_day)
        moments.append(
            (
                live & (p["segment"] == "enterprise"),
                np.full(len(live), review_day),
                "meeting",
                "Quarterly business review",
                "Reviewed adoption, goals and the roadmap.",
            )
        )
    return moments
