"""The promotion gate, on backtest means: decided in component code (the local runner has no ``dsl.If``)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
