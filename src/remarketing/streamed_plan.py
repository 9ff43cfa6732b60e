"""Every customer's place in the contact list of a file of any size, in memory that does not grow with it.

:func:`contacts.assign_drawn` makes the plan in memory: each arm's customers ranked by probability (ties
by their order in the file), the top of each arm selected up to its budget, a share of the selected held
out (the smallest draws within each stratum of their ranks), a few of the others called at random (the
smallest draws among them). :func:`plan_file` makes the same plan (tested equal) for a file read chunk by
chunk, holding one bucket of it at a time:

1. the probabilities' histogram, on the top bits of a sort key (256 bands per doubling of the score), is
   cut into buckets of consecutive scores of about ``bucket_rows`` customers;
2. each customer's numbers (sort key, position, draw, arm) are spilled to its bucket on disk;
3. bucket after bucket, best first, each is sorted and ranked, each arm's ranks going on from the bucket
   before. Who is held out or explored depends only on the smallest draws of each stratum (and of the
   others): those are kept as the buckets pass, never more than the holdout's size. The ranks are spilled
   again, by position;
4. :meth:`StreamedPlan.of_rows` then gives any run of consecutive rows its plan (the columns of
   :func:`contacts.assign_drawn`) and its line in predictions.csv.

Memory: one bucket, the histogram (8 MB) and the holdout and explore picks (the holdout share of the
budget). Customers with one exact score stay in one bucket, so a file of millions of equal scores is held
whole at step 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from remarketing import contacts
from remarketing.errors import RemarketingError
from remarketing.ports import CHALLENGER, CHAMPION
from remarketing.spill import MAX_BUCKETS, RecordSpill

ARMS = tuple(sorted((CHALLENGER, CHAMPION)))  # customers of the same rank in two arms: in this order
BUCKET_ROWS = 50_000  # customers per bucket, at least
KEY_BITS = 20  # the histogram's bins: the sort key's top bits
_KEY_SHIFT = np.uint64(64 - KEY_BITS)
_NUMBERS = np.dtype([("key", "<u8"), ("position", "<i8"), ("draw", "<f8"), ("arm", "i1")])
_RANKS = np.dtype([("position", "<i8"), ("rank", "<i8"), ("arm", "i1")])
_PICK = np.dtype([("draw", "<f8"), ("position", "<i8")])


def arm_codes(arms: pd.Series) -> np.ndarray:
    """Each row's arm as its index in :data:`ARMS` (int8); an arm that is neither is refused."""
    codes = pd.Categorical(arms, categories=ARMS).codes
    if (codes < 0).any():
        unknown = sorted(set(np.asarray(arms)[codes < 0].astype(str)))
        raise RemarketingError(f"scored rows name an arm that is neither of {ARMS}: {', '.join(unknown)}")
    return codes.astype("int8")


def sort_key(probability: np.ndarray) -> np.ndarray:
    """An unsigned key per score whose ascending order is the scores' descending one, NaN last: the order
    of ``argsort(-probability)``, equal scores equal keys."""
    p = np.asarray(probability, dtype="float64") + 0.0  # -0.0 becomes 0.0, equal to it as a score
    bits = p.view("uint64")
    negative = (bits >> np.uint64(63)).astype(bool)
    ascending = np.where(negative, ~bits, bits | np.uint64(1 << 63))  # IEEE bits in the floats' order
    key = ~ascending
    key[np.isnan(p)] = np.iinfo("uint64").max
    return key


@dataclass(frozen=True)
class ArmPlan:
    """One arm's figures, fixed before any of its customers is ranked."""

    customers: int
    selected: int  # ranks 1..selected are selected
    quotas: np.ndarray  # customers held out in each stratum of the selected
    strata: np.ndarray  # the selected in each stratum
    explore: int  # customers called at random among the others

    @classmethod
    def of(cls, customers: int, eligible: int, budget: int, policy: contacts.Policy) -> ArmPlan:
        selected = min(budget, eligible if policy.by_value else customers)
        strata = contacts.stratum_sizes(selected)
        quotas = contacts.quotas(strata, policy.holdout_share)
        others = customers - selected
        explore = min(math.floor(policy.explore_share * others + 0.5), int(quotas.sum())) if others else 0
        return cls(customers, selected, quotas, strata, explore)

    def stratum(self, rank: np.ndarray) -> np.ndarray:
        """The stratum (1..10) of selected ranks (as :func:`contacts.deciles_of` of the selected's ranks)."""
        return (rank - 1) * contacts.DECILES // max(1, self.selected) + 1


def _smallest(kept: np.ndarray, new: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` picks of both with the smallest draws, ties by position (contacts' ``_draw``)."""
    both = np.concatenate([kept, new])
    if len(both) <= size:
        return both
    return both[np.lexsort((both["position"], both["draw"]))[:size]]


class StreamedPlan:
    """The plan of a file whose ranks are on disk (:func:`plan_file`): read it with :meth:`of_rows`."""

    def __init__(
        self,
        arms: dict[int, ArmPlan],
        held: np.ndarray,
        explored: np.ndarray,
        ranks: RecordSpill,
        block_rows: int,
        rows: int,
    ) -> None:
        self.arms, self.rows = arms, rows
        self._held, self._explored = np.sort(held), np.sort(explored)
        self._ranks, self._block_rows = ranks, block_rows
        self._block: tuple[int, np.ndarray] | None = None  # the last block read: chunks may straddle two

    def __len__(self) -> int:
        return self.rows

    def _ranks_of(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        rank, arm = np.zeros(stop - start, dtype="int64"), np.zeros(stop - start, dtype="int8")
        for b in range(start // self._block_rows, (stop - 1) // self._block_rows + 1):
            if self._block is None or self._block[0] != b:
                self._block = (b, self._ranks.read(b))
            records = self._block[1]
            mine = records[(records["position"] >= start) & (records["position"] < stop)]
            rank[mine["position"] - start], arm[mine["position"] - start] = mine["rank"], mine["arm"]
        if (rank == 0).any():
            raise RemarketingError(f"rows {start:,} to {stop:,} of the scored file were never ranked")
        return rank, arm

    def of_rows(self, start: int, stop: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows ``start`` to ``stop`` (0-based, in the file's order): their plan, with the columns and types
        of :func:`contacts.assign_drawn` (the group as a category, the decile as int8), and their lines in
        predictions.csv (0 is the best customer: by rank, then by arm)."""
        if not 0 <= start <= stop <= self.rows:
            raise RemarketingError(f"rows {start:,} to {stop:,} are outside the {self.rows:,} ranked")
        n = stop - start
        rank, arm = self._ranks_of(start, stop)
        position = np.arange(start, stop)
        customers, selected = (np.zeros(len(ARMS), dtype="int64") for _ in range(2))
        for k, plan in self.arms.items():
            customers[k], selected[k] = plan.customers, plan.selected
        chosen = rank <= selected[arm]
        held = chosen & _member(position, self._held)
        explored = ~chosen & _member(position, self._explored)
        group = np.full(n, 3, dtype="int8")  # contacts.GROUPS: targeted, holdout, explore, not_selected
        group[chosen], group[held], group[explored] = 0, 1, 2
        chance = np.ones(n)
        for k, plan in self.arms.items():
            mine = arm == k
            picked = mine & chosen
            if picked.any():
                stratum = plan.stratum(rank[picked]) - 1
                share = plan.quotas[stratum] / plan.strata[stratum]
                chance[picked] = np.where(held[picked], share, 1 - share)
            rest = mine & ~chosen
            if rest.any():
                share = plan.explore / (plan.customers - plan.selected)
                chance[rest] = np.where(explored[rest], share, 1 - share)
        decile = np.minimum(
            contacts.DECILES, (rank - 1) * contacts.DECILES // np.maximum(1, customers[arm]) + 1
        )
        line = np.zeros(n, dtype="int64")
        for k in range(len(ARMS)):  # ranked before in every arm, then of this rank in an earlier arm
            line += np.minimum(rank - 1, customers[k]) + ((arm > k) & (rank <= customers[k]))
        plan = pd.DataFrame(
            {
                "rank": rank,
                "decile": decile.astype("int8"),
                "selected": chosen,
                "group": pd.Categorical.from_codes(group, categories=contacts.GROUPS),
                "group_probability": chance,
                "contact": (group == 0) | (group == 2),
            }
        )
        return plan, line

    def close(self) -> None:
        """Remove the ranks from disk: once every row has had its plan, they are not wanted."""
        self._ranks.delete()
        self._block = None


def _member(position: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Whether each position is among the sorted ``picks``."""
    if not len(picks):
        return np.zeros(len(position), dtype=bool)
    at = np.minimum(np.searchsorted(picks, position), len(picks) - 1)
    return picks[at] == position


def plan_file(
    numbers: Callable[[], Iterable[pd.DataFrame]],
    rows: int,
    policy: contacts.Policy,
    folder: Path,
    *,
    bucket_rows: int = BUCKET_ROWS,
) -> StreamedPlan:
    """The plan of a file of ``rows`` customers. ``numbers()`` reads the file's chunks in order, with
    ``customer_id``, ``arm`` and ``probability``; it is called twice. The spills are written in
    ``folder``."""
    size = max(bucket_rows, -(-rows // MAX_BUCKETS))  # customers per bucket, and positions per block
    histogram, customers, eligible = _count(numbers(), rows, policy)
    arms = _arm_plans(customers, eligible, policy)
    bucket_of_bin = _cut(histogram, size)
    with RecordSpill(folder, "numbers", _NUMBERS, int(bucket_of_bin.max()) + 1) as spill:
        start = 0
        for frame in numbers():
            records = np.empty(len(frame), dtype=_NUMBERS)
            records["key"] = sort_key(frame["probability"].to_numpy(dtype="float64"))
            records["position"] = np.arange(start, start + len(frame))
            records["draw"] = contacts.uniform(frame["customer_id"], policy.seed, policy.key)
            records["arm"] = arm_codes(frame["arm"])
            spill.add(records, bucket_of_bin[records["key"] >> _KEY_SHIFT])
            start += len(frame)
        if start != rows:
            raise RemarketingError(
                f"the scored file changed while it was ranked ({rows:,} rows, then {start:,})"
            )
        ranks = RecordSpill(folder, "ranks", _RANKS, max(1, -(-rows // size)))
        held, explored = _rank(spill, arms, ranks, size)
        spill.delete()
    return StreamedPlan(arms, held, explored, ranks, size, rows)


def _count(
    frames: Iterable[pd.DataFrame], rows: int, policy: contacts.Policy
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The histogram of the scores' sort keys, each arm's customers and those worth a call."""
    histogram = np.zeros(1 << KEY_BITS, dtype="int64")
    customers, eligible = np.zeros(len(ARMS), dtype="int64"), np.zeros(len(ARMS), dtype="int64")
    seen = 0
    for frame in frames:
        p, arm = frame["probability"].to_numpy(dtype="float64"), arm_codes(frame["arm"])
        histogram += np.bincount((sort_key(p) >> _KEY_SHIFT).astype(np.intp), minlength=1 << KEY_BITS)
        customers += np.bincount(arm, minlength=len(ARMS))
        if policy.by_value:
            eligible += np.bincount(arm[p > policy.break_even], minlength=len(ARMS))  # type: ignore[operator]
        seen += len(frame)
    if seen != rows:
        raise RemarketingError(f"the scored file has {seen:,} rows, not the {rows:,} it was counted with")
    return histogram, customers, eligible


def _arm_plans(customers: np.ndarray, eligible: np.ndarray, policy: contacts.Policy) -> dict[int, ArmPlan]:
    """Each present arm's figures: in an experiment the budget is shared in proportion to the arms."""
    from remarketing.experiments import split_budget

    present = [k for k in range(len(ARMS)) if customers[k]]
    budgets = {k: policy.budget for k in present}
    if len(present) > 1:
        shared = split_budget(policy.budget, {ARMS[k]: int(customers[k]) for k in present})
        budgets = {k: shared[ARMS[k]] for k in present}
    return {k: ArmPlan.of(int(customers[k]), int(eligible[k]), budgets[k], policy) for k in present}


def _cut(histogram: np.ndarray, size: int) -> np.ndarray:
    """Each bin's bucket: consecutive bins, a new bucket every ``size`` customers (a bin is never split)."""
    before = np.cumsum(histogram) - histogram
    used = histogram > 0
    bucket = np.zeros(len(histogram), dtype=np.intp)
    bucket[used] = np.unique(before[used] // size, return_inverse=True)[1]
    return bucket


def _rank(
    numbers: RecordSpill, arms: dict[int, ArmPlan], ranks: RecordSpill, block_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: the buckets best first, each sorted and ranked within each arm; the ranks spilled by
    position; the positions held out and explored."""
    offset = dict.fromkeys(arms, 0)
    held = {(k, d): np.empty(0, dtype=_PICK) for k in arms for d in range(contacts.DECILES)}
    explored = {k: np.empty(0, dtype=_PICK) for k in arms}
    for b in range(numbers.buckets):
        records = numbers.read(b)
        records = records[np.lexsort((records["position"], records["key"]))]
        rank = np.empty(len(records), dtype="int64")
        for k, plan in arms.items():
            mine = np.flatnonzero(records["arm"] == k)
            rank[mine] = offset[k] + np.arange(1, len(mine) + 1)
            offset[k] += len(mine)
            picks = np.empty(len(mine), dtype=_PICK)
            picks["draw"], picks["position"] = records["draw"][mine], records["position"][mine]
            chosen = rank[mine] <= plan.selected
            strata = plan.stratum(rank[mine][chosen]) - 1
            for d in np.unique(strata[plan.quotas[strata] > 0]):
                held[k, d] = _smallest(held[k, d], picks[chosen][strata == d], int(plan.quotas[d]))
            if plan.explore:
                explored[k] = _smallest(explored[k], picks[~chosen], plan.explore)
        out = np.empty(len(records), dtype=_RANKS)
        out["position"], out["rank"], out["arm"] = records["position"], rank, records["arm"]
        ranks.add(out, out["position"] // block_rows)
    ranks.close()
    none = np.empty(0, dtype="int64")
    return (
        np.concatenate([none, *(p["position"] for p in held.values())]),
        np.concatenate([none, *(p["position"] for p in explored.values())]),
    )
