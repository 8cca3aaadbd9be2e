"""Which scorecard applies to which account: non-default scorecards in priority order, the first
whose conditions all hold wins; the default scorecard takes every account left over.

A condition is {column: [allowed values]} over the feature frame ("segment", "tier", or any
`attr_<key>` column). A condition on a column the frame does not have (touch tiers, until the
touch model exists) matches nothing, so a tier-specific scorecard never scores the wrong tier.
"""

import pandas as pd

__all__ = ["assign_scorecards"]


def _matches(features: pd.DataFrame, match: dict) -> pd.Series:
    mask = pd.Series(True, index=features.index)
    for column, allowed in (match or {}).items():
        if not allowed:
            continue
        if column not in features:
            return pd.Series(False, index=features.index)
        wanted = {str(a) for a in allowed}
        values = features[column].astype(object).where(features[column].notna(), None)
        mask &= values.map(lambda v, wanted=wanted: v is not None and str(v) in wanted)
    return mask


def assign_scorecards(features: pd.DataFrame, definitions: list[dict]) -> pd.Series:
    """Series (index account_id) of the chosen definition's position in `definitions`; accounts
    no scorecard applies to (no default configured) are left out."""
    chosen = pd.Series(-1, index=features.index, dtype="int64")
    specific = sorted(
        (i for i, d in enumerate(definitions) if not d.get("is_default")),
        key=lambda i: (definitions[i].get("priority", 0), definitions[i].get("scorecard", "")),
    )
    for i in specific:
        free = chosen == -1
        if not free.any():
            break
        chosen[free & _matches(features, definitions[i].get("match", {}))] = i
    defaults = [i for i, d in enumerate(definitions) if d.get("is_default")]
    if defaults:
        chosen[chosen == -1] = defaults[0]
    return chosen[chosen >= 0]
