"""The promotion gate, on backtest means: decided in component code (the local runner has no ``dsl.If``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

COMPARED = ("roc_auc", "pr_auc")  # metrics on which a challenger may not lose to the champion


@dataclass(frozen=True)
class Floors:
    roc_auc: float
    lift_at_10pct: float

    def as_dict(self) -> dict[str, float]:
        return {"roc_auc": self.roc_auc, "lift_at_10pct": self.lift_at_10pct}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class Evaluation:
    """The evaluate step's report: which family, why, every family's backtest, and the gate's verdict."""

    family: str
    selection_metric: str
    choice: str  # why this family
    backtests: dict[str, Any]  # family -> FamilyBacktest.as_dict()
    summary: dict[str, dict[str, float]]  # the chosen family's mean and worst
    champion: dict[str, Any] | None  # the champion's version and its own backtest summary
    promote: bool
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**data)


def decide(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    *,
    floors: Floors,
    margin: float,
    champion_note: str = "",
) -> Decision:
    """Promote when the candidate's mean backtest metrics clear the floors and are not worse than the
    champion's own mean backtest metrics by more than ``margin``. Without a champion, the floors decide.
    ``champion_note`` says where the champion's figures come from when it has none to compare."""
    reasons = []
    for name, floor in floors.as_dict().items():
        if candidate[name] < floor:
            reasons.append(f"mean backtest {name} {candidate[name]:.4f} is below the floor {floor:.4f}")
    if champion is not None:
        for name in COMPARED:
            if candidate[name] < champion[name] - margin:
                reasons.append(
                    f"mean backtest {name} {candidate[name]:.4f} is worse than the champion's "
                    f"{champion[name]:.4f} by more than {margin:.4f}"
                )
    if reasons:
        return Decision(False, reasons)
    if champion is None:
        return Decision(True, [champion_note or "no champion yet, and the floors are cleared"])
    return Decision(True, ["floors cleared and not worse than the champion's backtests"])
