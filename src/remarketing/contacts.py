"""The contact list: whom to call, whom to hold out, whom to call at random, and each one's chance of it.

- **Selected** (who would be called): the top of the ranking up to the budget; with a call's cost and a
  conversion's value, only customers worth a call (``p * value - cost > 0``, i.e. ``p`` above the
  break-even probability ``cost / value``), best first, up to the budget.
- **holdout**: a share of the selected, drawn at random within each decile of their scores, is not called,
  so the effect of calling can be measured when the outcomes come back.
- **explore**: a share of the others is called at random, so the model is also measured where it says
  "no". Explore calls use only the calls the holdout frees: the list never has more calls than the budget,
  and the value rule's unprofitable customers are never called to fill unused budget.
- **targeted**: the selected who are called; **not_selected**: the rest.

Each customer's random draw is a keyed hash of the id, the seed and the file's sha256: the same file,
model and seed give the same groups (ties in score aside, whatever the row order), and each week's file
draws afresh, so nobody is held out week after week.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

GROUPS = ("targeted", "holdout", "explore", "not_selected")
CALLED = ("targeted", "explore")
DECILES = 10


@dataclass(frozen=True)
class Policy:
    budget: int
    call_cost: float | None = None
    conversion_value: float | None = None
    holdout_share: float = 0.05
    explore_share: float = 0.01
    seed: int = 42
    key: str = ""  # what else keys the draw: the file's sha256

    @property
    def by_value(self) -> bool:
        return self.call_cost is not None and self.conversion_value is not None

    @property
    def break_even(self) -> float | None:
        """The probability above which a call is worth its cost."""
        if not self.by_value:
            return None
        return float(self.call_cost) / float(self.conversion_value)  # type: ignore[arg-type]


def uniform(ids: pd.Series, seed: int, key: str = "") -> np.ndarray:
    """A number in [0, 1) per customer from a keyed hash of the id (SipHash, pandas' own)."""
    hash_key = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16]
    text = ids.astype(str).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(text, index=False, hash_key=hash_key)
    return (hashed.to_numpy(dtype="uint64") >> np.uint64(11)).astype("float64") / float(2**53)


def rank(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank 1 is the most likely to convert (ties by position); decile 1 is the top 10%."""
    order = np.argsort(-probabilities, kind="stable")
    ranks = np.empty(len(order), dtype="int64")
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks, deciles_of(ranks)


def deciles_of(ranks: np.ndarray) -> np.ndarray:
    """Decile 1 holds the best-ranked tenth of ``ranks`` (ranks 1..n, in any order)."""
    return np.minimum(DECILES, (ranks - 1) * DECILES // max(1, len(ranks)) + 1)


def stratum_sizes(selected: int) -> np.ndarray:
    """How many of ranks 1..``selected`` fall in each of their ten strata (``deciles_of`` those ranks),
    from the count alone: stratum d holds ranks ``ceil((d - 1) * selected / 10) + 1`` to ``ceil(d * selected
    / 10)``."""
    edges = -(-np.arange(DECILES + 1) * selected // DECILES)
    return np.diff(edges)


def quotas(sizes: np.ndarray, share: float) -> np.ndarray:
    """``round(share * total)`` spread over strata in proportion to their sizes (largest remainder)."""
    exact = sizes * share
    quotas = np.floor(exact).astype(int)
    short = int(math.floor(share * sizes.sum() + 0.5)) - int(quotas.sum())
    if short > 0:
        quotas[np.argsort(-(exact - quotas), kind="stable")[:short]] += 1
    return quotas


def _draw(members: np.ndarray, u: np.ndarray, size: int) -> np.ndarray:
    return members[np.argsort(u[members], kind="stable")[:size]]


def assign(ids: pd.Series, probabilities: np.ndarray, policy: Policy) -> pd.DataFrame:
    """One row per customer, in the input's order: ``rank``, ``decile``, ``selected``, ``group``,
    ``group_probability`` (the chance of being put in that group) and ``contact`` (called or not)."""
    return assign_drawn(uniform(ids, policy.seed, policy.key), probabilities, policy)


def assign_drawn(u: np.ndarray, probabilities: np.ndarray, policy: Policy) -> pd.DataFrame:
    """:func:`assign` from each customer's draw (:func:`uniform`) instead of the ids, which a streamed
    file does not keep in memory (the draws are computed chunk by chunk)."""
    p = np.asarray(probabilities, dtype="float64")
    n = len(p)
    ranks, deciles = rank(p)
    selected = ranks <= policy.budget
    if policy.by_value:  # a threshold on p: the eligible are the top of the ranking
        selected &= p > policy.break_even  # type: ignore[operator]
    group = np.full(n, "not_selected", dtype=object)  # not np.where: its fixed-width text is 48 bytes a row
    group[selected] = "targeted"
    chance = np.ones(n)

    chosen = np.flatnonzero(selected)
    strata = deciles_of(ranks[chosen])  # deciles of the selected's own scores
    sizes = stratum_sizes(len(chosen))
    held_out = 0
    for d, quota in enumerate(quotas(sizes, policy.holdout_share), start=1):
        members = chosen[strata == d]
        if not len(members):
            continue
        held = _draw(members, u, quota)
        group[held] = "holdout"
        chance[members], chance[held] = 1 - quota / len(members), quota / len(members)
        held_out += quota

    others = np.flatnonzero(~selected)
    if len(others):
        size = min(int(math.floor(policy.explore_share * len(others) + 0.5)), held_out)
        explored = _draw(others, u, size)
        group[explored] = "explore"
        chance[others], chance[explored] = 1 - size / len(others), size / len(others)
    return pd.DataFrame(
        {
            "rank": ranks,
            "decile": deciles,
            "selected": selected,
            "group": group,
            "group_probability": chance,
            "contact": np.logical_or.reduce([group == g for g in CALLED]),
        }
    )


def expected_of_top(probabilities: np.ndarray, n: int) -> tuple[float, float]:
    """Expected conversions and conversion rate if the ``n`` highest-scored customers are called."""
    p = np.sort(np.asarray(probabilities, dtype="float64"))[::-1][: max(1, n)]
    return float(p.sum()), float(p.mean())


@dataclass
class Totals:
    """Each group's customers and the sum of their probabilities, and those worth a call: what
    :func:`summary` reports, added up chunk by chunk for a file of any size."""

    customers: np.ndarray = field(default_factory=lambda: np.zeros(len(GROUPS), dtype="int64"))
    probability: np.ndarray = field(default_factory=lambda: np.zeros(len(GROUPS)))
    worth_calling: int = 0

    def add(self, group: pd.Series, probabilities: np.ndarray, policy: Policy) -> None:
        """Some customers' groups (text or categorical) and probabilities."""
        codes = pd.Categorical(group, categories=GROUPS).codes
        if (codes < 0).any():
            raise ValueError(f"a group is none of {GROUPS}")
        p = np.asarray(probabilities, dtype="float64")
        self.customers += np.bincount(codes, minlength=len(GROUPS))
        self.probability += np.bincount(codes, weights=p, minlength=len(GROUPS))
        if policy.by_value:
            self.worth_calling += int((p > policy.break_even).sum())  # type: ignore[operator]

    @classmethod
    def of(cls, plan: pd.DataFrame, probabilities: np.ndarray, policy: Policy) -> Totals:
        totals = cls()
        totals.add(plan["group"], probabilities, policy)
        return totals

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.customers + other.customers,
            self.probability + other.probability,
            self.worth_calling + other.worth_calling,
        )

    def count(self, *groups: str) -> int:
        return int(sum(self.customers[GROUPS.index(g)] for g in groups))

    def expected(self, *groups: str) -> float:
        """Expected conversions of the groups' customers: the sum of their probabilities."""
        return float(sum(self.probability[GROUPS.index(g)] for g in groups))


def summary(totals: Totals, policy: Policy) -> dict[str, Any]:
    """Counts per group, expected conversions of the called and, with a cost and value, expected profit."""
    counts = {g: totals.count(g) for g in GROUPS}
    calls, targeted = totals.count(*CALLED), counts["targeted"]
    selected, others = counts["targeted"] + counts["holdout"], counts["explore"] + counts["not_selected"]
    everyone = int(totals.customers.sum())
    out: dict[str, Any] = {
        "groups": counts,
        "calls": calls,
        "budget": policy.budget,
        "holdout_share": policy.holdout_share,
        "explore_share": policy.explore_share,
        "holdout_share_realised": counts["holdout"] / selected if selected else 0.0,
        "explore_share_realised": counts["explore"] / others if others else 0.0,
        "seed": policy.seed,
        "draw_key": "sha256 of the file",
        "expected_conversions": totals.expected(*CALLED),
        "expected_conversions_targeted": totals.expected("targeted"),
        "expected_conversion_rate": totals.expected("targeted") / targeted if targeted else None,
        "base_rate": totals.expected(*GROUPS) / everyone if everyone else float("nan"),
    }
    if policy.by_value:
        cost, value = float(policy.call_cost), float(policy.conversion_value)  # type: ignore[arg-type]
        out.update(
            {
                "call_cost": cost,
                "conversion_value": value,
                "break_even_probability": policy.break_even,
                "worth_calling": totals.worth_calling,
                "expected_profit": totals.expected(*CALLED) * value - cost * calls,
                "expected_profit_targeted": totals.expected("targeted") * value - cost * targeted,
            }
        )
    return out
