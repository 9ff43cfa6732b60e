"""A run's own parameters (an upload's, carried as object metadata text): read and checked in one place for
the CLI, the API and the pipeline. :class:`ParameterError` names every wrong one."""

from __future__ import annotations

import math
import re
from typing import Any

from remarketing.errors import ParameterError

SHARE_MAX = 0.5
INTEGER, NUMBER, VERSION = "integer", "number", "version"
PARAMETERS = {
    "budget": INTEGER,
    "budget_share": NUMBER,
    "call_cost": NUMBER,
    "conversion_value": NUMBER,
    "holdout_share": NUMBER,
    "explore_share": NUMBER,
    "model_version": VERSION,
}


def _given(params: dict[str, Any], key: str) -> bool:
    return params.get(key) not in (None, "")


def _number(params: dict[str, Any], key: str, problems: list[str]) -> float | None:
    if not _given(params, key):
        return None
    value = params[key]
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


def parse(params: dict[str, Any]) -> dict[str, Any]:
    """The known parameters among ``params`` (numbers, or text), checked and typed; absent ones are left
    out, unknown keys ignored."""
    problems: list[str] = []
    numbers = {k: _number(params, k, problems) for k, kind in PARAMETERS.items() if kind != VERSION}
    budget, share = numbers["budget"], numbers["budget_share"]
    cost, value = numbers["call_cost"], numbers["conversion_value"]
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
    if _given(params, "call_cost") != _given(params, "conversion_value"):
        problems.append(
            "give both call_cost and conversion_value (to call only customers worth it), or neither"
        )
    for key in ("holdout_share", "explore_share"):
        if numbers[key] is not None and not 0 <= numbers[key] <= SHARE_MAX:  # type: ignore[operator]
            problems.append(f"{key} must be between 0 and {SHARE_MAX}, not {numbers[key]:g}")
    version = str(params["model_version"]).strip() if _given(params, "model_version") else None
    if version is not None and not re.fullmatch(r"[0-9]+", version):
        problems.append(f"model_version must be a version number such as 3, not {params['model_version']!r}")
    if problems:
        raise ParameterError(problems)
    out: dict[str, Any] = {k: v for k, v in numbers.items() if v is not None}
    if "budget" in out:
        out["budget"] = int(out["budget"])
    if version is not None:
        out["model_version"] = version
    return out
