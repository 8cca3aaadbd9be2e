"""The demo generator on its own: frames only, no database."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from accounts.demo.generator import generate_business, iter_event_frames

TODAY = dt.date(2025, 6, 1)
MIDNIGHT = pd.Timestamp(TODAY, tz="UTC")


@pytest.fixture(scope="module")
def demo():
    return generate_business(n_accounts=500, days=365, seed=42, today=TODAY)


@pytest.fixture(scope="module")
def events(demo):
    frame = pd.concat(iter_event_frames(demo, accounts_per_chunk=200), ignore_index=True)
    frame["day"] = (frame["timestamp"] - MIDNIGHT).dt.days
    return frame


@pytest.fixture(scope="module")
def daily(demo, events):
    """Events per account (rows, in plan order) and day offset (columns -365..-1)."""
    counts = events.groupby(["account_id", "day"], observed=True).size().unstack(fill_value=0)
    return counts.reindex(index=demo.plan["external_id"], columns=range(-365, 0), fill_value=0)


def _frames(business) -> dict[str, pd.DataFrame]:
    names = ["plan", "accounts", "subscriptions", "contacts", "surveys", "notes"]
    return {name: getattr(business, name) for name in names}


def test_same_seed_gives_identical_business_and_events():
    first = generate_business(n_accounts=60, days=90, seed=7, today=TODAY)
    second = generate_business(n_accounts=60, days=90, seed=7, today=TODAY)
    for name, frame in _frames(first).items():
        pd.testing.assert_frame_equal(frame, _frames(second)[name], obj=name)
    for a, b in zip(iter_event_frames(first, 25), iter_event_frames(second, 25), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_another_seed_gives_another_business():
    first = generate_business(n_accounts=60, days=90, seed=7, today=TODAY)
    other = generate_business(n_accounts=60, days=90, seed=8, today=TODAY)
    assert not first.accounts["name"].equals(other.accounts["name"])
    assert len(pd.concat(iter_event_frames(first))) != len(pd.concat(iter_event_frames(other)))


def test_segments_are_few_enterprise_more_mid_market_and_many_smb(demo):
    share = demo.accounts["segment"].value_counts(normalize=True)
    assert 0.02 < share["enterprise"] < 0.1
    assert 0.15 < share["mid-market"] < 0.35
    assert share["smb"] > 0.6
    mrr = (
        demo.subscriptions[demo.subscriptions["end_date"].isna()]
        .merge(demo.accounts, left_on="account_id", right_on="external_id")
        .groupby("segment")["mrr"]
        .median()
    )
    assert mrr["enterprise"] > mrr["mid-market"] > mrr["smb"]


def test_default_book_has_enough_churns_with_reasons_for_a_churn_model(demo):
    subs = demo.subscriptions
    churned = subs[subs["churn_reason"] != ""]
    assert churned["account_id"].is_unique
    assert churned["end_date"].notna().all()
    assert (churned["end_date"] <= np.datetime64(TODAY)).all()
    assert (churned["end_date"] > np.datetime64(TODAY - dt.timedelta(days=365))).all()
    assert 60 <= len(churned) <= 150
    assert churned["churn_reason"].nunique() >= 5
    stages = demo.accounts.set_index("external_id")["lifecycle_stage"]
    assert (stages[churned["account_id"]] == "churned").all()
    assert (stages.drop(churned["account_id"]) != "churned").all()


def test_subscription_periods_chain_without_gaps_or_overlaps(demo):
    subs = demo.subscriptions
    assert subs["external_id"].is_unique
    for _, rows in subs.groupby("account_id"):
        rows = rows.sort_values("start_date")
        assert rows["end_date"].iloc[:-1].notna().all()  # only the last period may be open
        assert (
            rows["end_date"].iloc[:-1].to_numpy() == rows["start_date"].iloc[1:].to_numpy()
        ).all()
        assert (rows["churn_reason"].iloc[:-1] == "").all()  # a plan change is not a churn
    ended = subs[subs["end_date"].notna()]
    assert (ended["status"] == "canceled").all()
    assert (subs["renewal_date"] >= subs["start_date"]).all()
    changes = subs.groupby("account_id").size()
    assert (changes == 2).sum() >= 40  # upgrades and downgrades happen
    new_logos = subs.groupby("account_id")["start_date"].min() > np.datetime64("2024-06-01")
    assert new_logos.sum() >= 50


def test_events_stay_inside_each_accounts_customer_life(demo, events):
    assert events["event_id"].is_unique
    assert events["timestamp"].min() >= MIDNIGHT - pd.Timedelta(days=365)
    assert events["timestamp"].max() < MIDNIGHT
    life = demo.plan.set_index("external_id")[["start", "churn"]]
    per_account = events.groupby("account_id", observed=True)["day"].agg(["min", "max"])
    life = life.loc[per_account.index]
    assert (per_account["min"] >= life["start"]).all()
    assert (per_account["max"] < life["churn"]).all()
    assert 150_000 <= len(events) <= 350_000


def test_event_chunks_do_not_change_what_each_account_did(demo):
    small = pd.concat(iter_event_frames(demo, accounts_per_chunk=50))
    assert set(small["account_id"].astype(str)) <= set(demo.accounts["external_id"])
    assert small["account_id"].nunique() > 400


def test_churned_accounts_usage_decays_before_churn_but_not_always(demo, daily):
    plan = demo.plan
    churners = plan[
        (plan["churn"] <= 0) & (plan["churn"] > -240) & (plan["churn"] - plan["start"] > 150)
    ]
    stayers = plan[(plan["churn"] > 0) & (plan["start"] < -150)]

    def ratio(rows, end):
        late = [
            daily.loc[r.external_id, e - 30 : e - 1].sum()
            for r, e in zip(rows.itertuples(), end, strict=True)
        ]
        early = [
            daily.loc[r.external_id, e - 120 : e - 91].sum()
            for r, e in zip(rows.itertuples(), end, strict=True)
        ]
        return (np.array(late) + 1) / (np.array(early) + 1)

    churn_ratio = ratio(churners, churners["churn"])
    stay_ratio = ratio(stayers, np.zeros(len(stayers), dtype=int))
    assert len(churn_ratio) >= 40
    assert np.median(churn_ratio) < 0.8 < np.median(stay_ratio)
    # Noisy on purpose: some churns come without warning and some healthy accounts dip.
    assert (churn_ratio >= 0.9).mean() > 0.1
    assert (stay_ratio < 0.6).mean() > 0.02


def test_key_features_fade_faster_than_logins_before_churn(demo, events):
    plan = demo.plan.set_index("external_id")
    decaying = plan[(plan["decay_kind"] == 1) & (plan["churn"] <= 0)]
    churning = events[events["account_id"].isin(decaying.index)].copy()
    churning["to_churn"] = (
        decaying.loc[churning["account_id"].astype(str), "churn"].to_numpy() - churning["day"]
    )
    late = churning[churning["to_churn"] <= 30]["event"].value_counts(normalize=True)
    early = churning[churning["to_churn"] > 150]["event"].value_counts(normalize=True)
    assert late["automation_run"] < early["automation_run"]
    assert late["integration_synced"] < early["integration_synced"]
    assert late["login"] > early["login"]


def test_seats_are_nearly_full_in_the_month_before_an_upgrade(demo, events):
    plan = demo.plan.set_index("external_id")
    upgrades = plan[(plan["change_kind"] == 1) & (plan["change"] <= 0) & (plan["change"] > -330)]
    steady = plan[(plan["change_kind"] == 0) & (plan["churn"] > 0) & (plan["start"] < -60)]

    def utilisation(accounts: pd.DataFrame, window_end: pd.Series) -> pd.Series:
        """Distinct users in the 30 days before window_end, per seat."""
        mine = events[events["account_id"].isin(accounts.index)]
        end = window_end.loc[mine["account_id"].astype(str)].to_numpy()
        mine = mine[(mine["day"] >= end - 30) & (mine["day"] < end)]
        users = mine.groupby("account_id", observed=True)["user_id"].nunique()
        return users.reindex(accounts.index, fill_value=0) / accounts["seats0"]

    before_upgrade = utilisation(upgrades, upgrades["change"])
    usual = utilisation(steady, pd.Series(0, index=steady.index))
    assert len(before_upgrade) >= 30
    assert before_upgrade.mean() > 0.85 > usual.mean() + 0.1


def test_detractors_are_more_common_on_accounts_heading_to_churn_but_not_only_there(demo):
    nps = demo.surveys[demo.surveys["kind"] == "nps"].merge(
        demo.plan[["external_id", "churn"]], left_on="account_id", right_on="external_id"
    )
    days_left = nps["churn"] - (nps["responded_at"] - MIDNIGHT).dt.days
    heading = nps[days_left <= 120]
    others = nps[days_left > 120]
    assert (heading["score"] <= 6).mean() > (others["score"] <= 6).mean()
    assert (heading["score"] >= 9).mean() > 0.15  # some happy answers right before leaving
    assert (others["score"] <= 6).mean() > 0.1
    csat = demo.surveys[demo.surveys["kind"] == "csat"]["score"]
    assert csat.between(1, 5).all() and len(csat) > 100


def test_contacts_cover_the_roles_with_unique_emails(demo):
    contacts = demo.contacts
    assert contacts["external_id"].is_unique
    assert not contacts.duplicated(["account_id", "email"]).any()
    roles = contacts.groupby("account_id")["role"].agg(set)
    assert all({"champion", "decision_maker"} <= r for r in roles)
    assert set(contacts["role"]) == {"champion", "decision_maker", "billing", "user"}
    assert contacts["email"].str.endswith(".example").all()


def test_big_accounts_have_owners_and_some_small_ones_are_tech_touch(demo):
    accounts = demo.accounts
    big = accounts[accounts["segment"] != "smb"]
    assert (big["owner"] != "").all()
    smb_unowned = (accounts[accounts["segment"] == "smb"]["owner"] == "").mean()
    assert 0.2 < smb_unowned < 0.7
    assert (accounts["owner"] == "csm").mean() > 0.2
    attrs = pd.DataFrame(accounts["attributes"].tolist())
    assert {"employees", "region", "plan_tier", "acquisition_channel"} <= set(attrs.columns)
    assert pd.api.types.is_integer_dtype(attrs["employees"])


def test_event_generation_is_vectorised_fast_enough_for_benchmarks():
    import time

    business = generate_business(n_accounts=3000, days=180, seed=1, today=TODAY)
    started = time.process_time()
    count = sum(len(frame) for frame in iter_event_frames(business, accounts_per_chunk=1500))
    elapsed = time.process_time() - started
    assert count > 500_000
    # About 1.5 million a second on one core; the bound catches a slide back into Python loops
    # (tens of times slower) without flaking on a busy machine.
    assert count / elapsed > 750_000
