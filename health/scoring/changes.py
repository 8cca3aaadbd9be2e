"""What changed between two snapshots of an account, measure by measure."""

__all__ = ["snapshot_changes"]


def _delta(new, old):
    if new is None or old is None:
        return None
    return round(new - old, 2)


def snapshot_changes(before: dict, after: dict) -> dict:
    """`before`/`after`: {"as_of", "score", "grade", "measures": [...]} as stored. Measures are
    matched by name; one present on only one side (a scorecard edit) shows the other as None.
    Sorted by the size of the contribution change, biggest first."""
    old = {m["name"]: m for m in before["measures"]}
    new = {m["name"]: m for m in after["measures"]}
    names = list(new) + [n for n in old if n not in new]
    rows = []
    for name in names:
        o, n = old.get(name, {}), new.get(name, {})
        rows.append(
            {
                "name": name,
                "label": n.get("label") or o.get("label") or name,
                "points_from": o.get("points"),
                "points_to": n.get("points"),
                "points_delta": _delta(n.get("points"), o.get("points")),
                "contribution_from": o.get("contribution"),
                "contribution_to": n.get("contribution"),
                "contribution_delta": _delta(
                    n.get("contribution", 0.0), o.get("contribution", 0.0)
                ),
                "missing_from": o.get("missing"),
                "missing_to": n.get("missing"),
            }
        )
    rows.sort(key=lambda r: -abs(r["contribution_delta"] or 0.0))
    return {
        "from": before["as_of"],
        "to": after["as_of"],
        "score_from": before["score"],
        "score_to": after["score"],
        "score_delta": _delta(after["score"], before["score"]),
        "grade_from": before["grade"],
        "grade_to": after["grade"],
        "measures": rows,
    }
