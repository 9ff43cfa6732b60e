"""The alert rules, checked and unit-tested by promtool as CI does: a malformed rule or a failing case fails
with promtool's own message (it names the file and the line), and a rule without a test fails too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from remarketing import drift
from remarketing.settings import Settings

RULES = Path(__file__).resolve().parents[2] / "observability" / "rules"
RULE_FILES = sorted(RULES.glob("*.rules.yml"))
TEST_FILES = sorted((RULES / "tests").glob("*.test.yml"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:  # never a skip: CI installs it, and a skipped check would pass broken rules
        install = "`apt-get install prometheus` (`make system-packages`)"
        pytest.fail(f"promtool not found on PATH: install it with {install}", pytrace=False)
    return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=120)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"{result.stdout}\n{result.stderr}".strip()


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def cases() -> list[dict[str, Any]]:
    return [
        case
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_there_are_rules_and_tests() -> None:
    assert RULE_FILES and TEST_FILES


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_pass_promtool_check(path: Path) -> None:
    result = promtool("check", "rules", path)
    assert result.returncode == 0, output(result)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_rule_unit_tests_pass(path: Path) -> None:
    result = promtool("test", "rules", path)
    assert result.returncode == 0, output(result)


def test_every_alert_fires_and_stays_quiet_in_some_case() -> None:
    firing = {c["alertname"] for c in cases() if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases() if not c.get("exp_alerts")}
    names = {a["alert"] for a in alerts()}
    assert not names - firing, f"alerts without a case where they fire: {sorted(names - firing)}"
    assert not names - quiet, f"alerts without a case where they must not fire: {sorted(names - quiet)}"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_says_how_bad_and_what(alert: dict[str, Any]) -> None:
    assert "for" in alert
    assert alert.get("labels", {}).get("severity") in ("page", "ticket")
    assert {"summary", "description"} <= set(alert.get("annotations", {}))


def test_thresholds_follow_the_project() -> None:
    constants = {r["record"]: r["expr"].strip() for r in rules() if r.get("expr", "").startswith("vector(")}
    psi = float(constants["remarketing:drift_major_psi"].removeprefix("vector(").removesuffix(")"))
    assert drift.level(psi) == "major" and drift.level(psi - 1e-9) == "moderate"
    floor = float(constants["remarketing:retrain_floor_lift"].removeprefix("vector(").removesuffix(")"))
    assert floor == Settings.model_fields["retrain_floor_lift"].default


def test_a_malformed_rule_fails_with_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.rules.yml"
    lines = ["groups:", "  - name: broken", "    rules:", "      - alert: Broken", "        expr: up == == 0"]
    path.write_text("\n".join(lines) + "\n")
    result = promtool("check", "rules", path)
    assert result.returncode != 0
    assert f"{path}: 5:" in output(result), output(result)  # the expression is on line 5
