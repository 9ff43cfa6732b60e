"""The contact list: whom to call, whom to hold out, whom to call at random, and each one's chance of it.

- **Selected** (who would be called): the top of the ranking up to the budget; with a call's cost and a
  conversion's value, only customers worth a call (``p * value - cost > 0``, i.e. ``p`` above the
  break-even probability ``cost / value``), best first, up to the budget.
- **holdout**: a share of the selected, drawn at random within each score decile, is not called, so the
  effect of calling can be measured when the outcomes come back.
- **explore**: a share of the others is called at random, so the model is also measured where it says
  "no". Explore calls use the calls the holdout frees (and any budget the value rule left unused), so the
  list never has more calls than the budget.
- **targeted**: the selected who are called; **not_selected**: the rest.

Each customer's random draw is a keyed hash of the id and the seed: the same file, model and seed give
the same groups, whatever the row order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from remarketing.errors import ParameterError

GROUPS = ("targeted", "holdout", "explore", "not_selected")
CALLED = ("targeted", "explore")
SHARE_MAX = 0.5

# Per-upload parameters and how each is read (object metadata carries text).
INTEGER, NUMBER = "integer", "number"
PARAMETERS = {
    "budget": INTEGER,
    "budget_share": NUMBER,
    "call_cost": NUMBER,
    "conversion_value": NUMBER,
    "holdout_share": NUMBER,
    "explore_share": NUMBER,
}


@dataclass(frozen=True)
class Policy:
    budget: int
    call_cost: float | None = None
    conversion_value: float | None = None
    holdout_share: float = 0.05
    explore_share: float = 0.01
    seed: int = 42

    @property
    def by_value(self) -> bool:
        return self.call_cost is not None and self.conversion_value is not None

    @property
    def break_even(self) -> float | None:
        """The probability above which a call is worth its cost."""
        if not self.by_value:
            return None
        return float(self.call_cost) / float(self.conversion_value)  # type: ignore[arg-type]


def _number(params: dict[str, Any], key: str, problems: list[str]) -> float | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"{key} must be a number, not {value!r}")
        return None
    if not math.isfinite(number):
        problems.append(f"{key} must be a finite number, not {value!r}")
        return None
    if PARAMETERS[key] == INTEGER and not number.is_integer():
        problems.append(f"{key} must be a whole number, not {value!r}")
        return None
    return number


def parse(params: dict[str, Any]) -> dict[str, float | int]:
    """The contact-list parameters among ``params`` (numbers, or the text object metadata carries),
    checked; :class:`ParameterError` names every one that is wrong. Absent ones are left out."""
    problems: list[str] = []
    values = {key: _number(params, key, problems) for key in PARAMETERS}
    budget, share = values["budget"], values["budget_share"]
    cost, value = values["call_cost"], values["conversion_value"]
    if budget is not None and budget < 1:
        problems.append(f"budget must be at least 1 customer, not {budget:g}")
    if share is not None and not 0 < share <= 1:
        problems.append(f"budget_share must be in (0, 1], not {share:g}")
    if budget is not None and share is not None:
        problems.append("give either budget (how many customers to call) or budget_share, not both")
    if cost is not None and cost < 0:
        problems.append(f"call_cost must be 0 or more (the cost of one call), not {cost:g}")
    if value is not None and value <= 0:
        problems.append(f"conversion_value must be above 0 (what one conversion is worth), not {value:g}")
    given = {key for key in PARAMETERS if params.get(key) not in (None, "")}
    if ("call_cost" in given) != ("conversion_value" in given):
        problems.append(
            "give both call_cost and conversion_value (to call only customers worth it), or neither"
        )
    for key in ("holdout_share", "explore_share"):
        if values[key] is not None and not 0 <= values[key] <= SHARE_MAX:  # type: ignore[operator]
            problems.append(f"{key} must be between 0 and {SHARE_MAX}, not {values[key]:g}")
    if problems:
        raise ParameterError(problems)
    out: dict[str, float | int] = {k: v for k, v in values.items() if v is not None}
    if "budget" in out:
        out["budget"] = int(out["budget"])
    return out


def uniform(ids: pd.Series, seed: int) -> np.ndarray:
    """A number in [0, 1) per customer from a keyed hash of the id (SipHash, pandas' own)."""
    key = f"{seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(ids.astype(str).reset_index(drop=True), index=False, hash_key=key)
    return (hashed.to_numpy(dtype="uint64") >> np.uint64(11)).astype("float64") / float(2**53)


def rank(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank 1 is the most likely to convert (ties by position); decile 1 is the top 10%."""
    order = np.argsort(-probabilities, kind="stable")
    ranks = np.empty(len(order), dtype="int64")
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks, np.minimum(10, (ranks - 1) * 10 // max(1, len(ranks)) + 1)


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def assign(ids: pd.Series, probabilities: np.ndarray, policy: Policy) -> pd.DataFrame:
    """One row per customer, in the input's order: ``rank``, ``decile``, ``selected``, ``group``,
    ``group_probability`` (the chance of being put in that group) and ``contact`` (called or not)."""
    p = np.asarray(probabilities, dtype="float64")
    n = len(p)
    ranks, deciles = rank(p)
    eligible = p > policy.break_even if policy.by_value else np.ones(n, dtype=bool)
    selected = eligible & (ranks <= policy.budget)
    if policy.by_value:  # the best eligible customers: eligibility is a threshold on p, ranks follow p
        selected = eligible & (ranks <= min(policy.budget, int(eligible.sum())))
    u = uniform(ids, policy.seed)
    group = np.where(selected, "targeted", "not_selected").astype(object)
    chance = np.ones(n)

    for d in range(1, 11):  # the holdout, drawn within each score decile of the selected
        members = np.flatnonzero(selected & (deciles == d))
        if not len(members):
            continue
        held = members[np.argsort(u[members], kind="stable")[: _round(policy.holdout_share * len(members))]]
        group[held] = "holdout"
        share = len(held) / len(members)
        chance[members] = 1 - share
        chance[held] = share

    others = np.flatnonzero(~selected)
    capacity = policy.budget - int((group == "targeted").sum())
    if len(others):
        size = max(0, min(_round(policy.explore_share * len(others)), capacity))
        explored = others[np.argsort(u[others], kind="stable")[:size]]
        group[explored] = "explore"
        share = size / len(others)
        chance[others] = 1 - share
        chance[explored] = share
    return pd.DataFrame(
        {
            "rank": ranks,
            "decile": deciles,
            "selected": selected,
            "group": group,
            "group_probability": chance,
            "contact": np.isin(group, CALLED),
        }
    )


def summary(plan: pd.DataFrame, probabilities: np.ndarray, policy: Policy) -> dict[str, Any]:
    """Counts per group, expected conversions of the called and, with a cost and value, expected profit."""
    p = np.asarray(probabilities, dtype="float64")
    counts = {g: int((plan["group"] == g).sum()) for g in GROUPS}
    called = plan["contact"].to_numpy()
    targeted = (plan["group"] == "targeted").to_numpy()
    out: dict[str, Any] = {
        "groups": counts,
        "calls": int(called.sum()),
        "budget": policy.budget,
        "holdout_share": policy.holdout_share,
        "explore_share": policy.explore_share,
        "seed": policy.seed,
        "expected_conversions": float(p[called].sum()),
        "expected_conversions_targeted": float(p[targeted].sum()),
        "expected_conversion_rate": float(p[targeted].mean()) if targeted.any() else None,
        "base_rate": float(p.mean()),
    }
    if policy.by_value:
        cost, value = float(policy.call_cost), float(policy.conversion_value)  # type: ignore[arg-type]
        out.update(
            {
                "call_cost": cost,
                "conversion_value": value,
                "break_even_probability": policy.break_even,
                "worth_calling": int((p > policy.break_even).sum()),  # type: ignore[operator]
                "expected_profit": float((p[called] * value - cost).sum()),
                "expected_profit_targeted": float((p[targeted] * value - cost).sum()),
            }
        )
    return out
