"""What the CLI says: progress and reports on stderr (never wrapped), the one JSON line on stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from rich.console import Console
from rich.markup import escape

T = TypeVar("T")

# soft_wrap: lines are never broken, so an address copied from a log or a pipe is whole.
err = Console(stderr=True, soft_wrap=True)


def emit(payload: dict[str, Any]) -> None:
    """The one JSON line on stdout."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, **extra: Any) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    emit({"status": "failed", "error": {"message": message}, **extra})
    sys.exit(1)


def or_fail(call: Callable[[], T]) -> T:
    """The call's result; a RemarketingError fails as the CLI's contract says (a clear message, a JSON
    line, exit 1)."""
    from remarketing.errors import RemarketingError

    try:
        return call()
    except RemarketingError as exc:
        fail(str(exc))


def start_message(name: str, address: str) -> None:
    err.print(f"starting {name} at {address} ...")


def contact_line(m: dict[str, Any]) -> str:
    """``call 1,000: 950 targeted (expected 73.9%, 80% interval 43.5-91.2%), 50 at random; 50 held out``."""
    rate, low, high = (
        m.get(k)
        for k in ("expected_conversion_rate", "expected_conversion_rate_low", "expected_conversion_rate_high")
    )
    expected = f"expected {rate:.1%}" if rate is not None else "expected -"
    if low is not None and high is not None:
        expected += f", {m.get('interval_level', 0):.0%} interval {low:.1%}-{high:.1%}"
    line = (
        f"call {m.get('contacted', 0):,}: {m.get('targeted', 0):,} targeted ({expected}; base rate "
        f"{m.get('base_rate', 0):.1%}), {m.get('explore', 0):,} at random; {m.get('holdout', 0):,} held out"
    )
    if m.get("expected_profit") is not None:
        line += (
            f"; expected profit {m['expected_profit']:,.0f} (break-even probability "
            f"{m['break_even_probability']:.1%})"
        )
    return line


def demo_truth(scored: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What the demo knows that a real week would not yet: this week's outcomes, against the promise."""
    if not actual["targeted"]:
        return ["", "this week's outcomes: no customer was targeted, so there is no promise to check"]
    low, high = scored.get("expected_conversion_rate_low"), scored.get("expected_conversion_rate_high")
    rate = actual["conversion_rate_targeted"]
    inside = low is not None and high is not None and low <= rate <= high
    interval = "no interval"
    if low is not None and high is not None:
        verdict = "inside" if inside else "OUTSIDE"
        interval = f"{scored.get('interval_level', 0):.0%} interval {low:.1%}-{high:.1%}: {verdict}"
    return [
        "",
        f"this week's outcomes: the {actual['targeted']:,} targeted converted at {rate:.1%} against "
        f"{actual['base_rate']:.1%} for all {actual['customers']:,} customers: lift {actual['lift']:.2f}",
        f"  ROC-AUC of the scores {actual['roc_auc']:.3f}, precision in the top 10% "
        f"{actual['precision_at_10pct']:.1%}",
        f"  expected {scored['expected_conversion_rate']:.1%} "
        f"({scored['expected_conversion_rate'] * actual['targeted']:,.0f} conversions), actual {rate:.1%} "
        f"({actual['conversions_targeted']:,}); {interval}",
    ]
