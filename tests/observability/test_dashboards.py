"""The committed Grafana files are what ``observability/dashboards.py`` generates, every panel is complete,
every metric it reads is in the contract, and every PromQL expression parses (``promtool check rules``):
a malformed dashboard query fails CI with the dashboard file, the line of its ``expr`` and promtool's
message."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from observability import dashboards

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "observability.md"
DASHBOARD_FILES = sorted(dashboards.DASHBOARDS_DIR.glob("*.json"))
EXPR_LINE = re.compile(r'^\s*"expr":\s*(".*")\s*,?\s*$')
RECORD = "dashboard:expr_{:04d}"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:  # never a skip: a skipped check would let a broken query through CI
        pytest.fail("promtool not found on PATH: install it with `apt-get install prometheus`", pytrace=False)
    return path


def expressions(path: Path) -> list[tuple[int, str]]:
    """Each ``expr`` of a dashboard file with its line number (1-based), read from the file's text."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = EXPR_LINE.match(line)
        if match:
            found.append((number, json.loads(match.group(1))))
    return found


def malformed_queries(paths: list[Path], folder: Path) -> list[str]:
    """``<file>:<line>: <promtool's message>`` for every expression promtool cannot parse, checking all
    of them at once as recording rules of one temporary rules file."""
    where: dict[str, str] = {}
    rules = []
    for path in paths:
        for line, expr in expressions(path):
            record = RECORD.format(len(rules))
            where[record] = f"{path}:{line}"
            rules.append({"record": record, "expr": expr})
    rules_file = folder / "dashboard-queries.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=120
    )
    if result.returncode == 0:
        return []
    output = f"{result.stdout}\n{result.stderr}"
    problems = [
        f"{where[record]}: {message}"
        for record, message in re.findall(r'"(dashboard:expr_\d{4})": (.*)', output)
    ]
    return problems or [f"promtool check rules failed: {output.strip()}"]


def test_there_is_one_file_per_dashboard() -> None:
    assert [p.stem for p in DASHBOARD_FILES] == sorted(d.name for d in dashboards.DASHBOARDS)


def test_the_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = dashboards.write(tmp_path)
    for path in written:
        committed = dashboards.GRAFANA / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `python -m observability.dashboards`"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} differs from observability/dashboards.py: run `python -m observability.dashboards`"
        )
    on_disk = {p.relative_to(dashboards.GRAFANA) for p in dashboards.GRAFANA.rglob("*") if p.is_file()}
    stray = on_disk - {p.relative_to(tmp_path) for p in written}
    assert not stray, (
        f"files in observability/grafana the generator does not write: {sorted(map(str, stray))}"
    )


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_panel_has_a_datasource_a_title_and_a_query(path: Path) -> None:
    board = json.loads(path.read_text(encoding="utf-8"))
    assert board["schemaVersion"] >= 39
    assert [v["name"] for v in board["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    assert board["panels"]
    for panel in board["panels"]:
        where = f"{path.name}: panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("title"), where
        assert panel["type"] in ("timeseries", "stat"), where
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel.get("targets"), f"{where} has no query"
        for target in panel["targets"]:
            assert target.get("expr") and target.get("datasource") == panel["datasource"], where
    # the line scan of the malformed-query check sees every query of the file
    assert len(expressions(path)) == sum(len(p["targets"]) for p in board["panels"])


def test_every_metric_read_is_in_the_contract() -> None:
    contract = CONTRACT.read_text(encoding="utf-8")
    names = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboards.PANELS
        for query in panel.queries
        for name in re.findall(r"\b((?:remarketing|request)_[a-z_]+)\b(?=\{|\[|\))", query.expr)
    }
    assert names
    missing = sorted(name for name in names if f"`{name}`" not in contract)
    assert not missing, f"dashboards read metrics that docs/observability.md does not declare: {missing}"


def test_there_are_key_panels_for_the_app() -> None:
    assert {p.dashboard for p in dashboards.KEY_PANELS} == {d.name for d in dashboards.DASHBOARDS}
    assert len({p.slug for p in dashboards.PANELS}) == len(dashboards.PANELS)  # the API's panel ids


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    problems = malformed_queries(DASHBOARD_FILES, tmp_path)
    assert not problems, "malformed dashboard queries:\n" + "\n".join(problems)


def test_a_malformed_query_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    board = json.loads((dashboards.DASHBOARDS_DIR / "serving.json").read_text(encoding="utf-8"))
    unclosed = "sum(rate(remarketing_model_predictions_total[5m])"
    board["panels"][1]["targets"][2]["expr"] = unclosed
    broken = tmp_path / "serving.json"
    broken.write_text(json.dumps(board, indent=2))
    lines = broken.read_text().splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if json.dumps(unclosed) in text)

    problems = malformed_queries([*DASHBOARD_FILES, broken], tmp_path)

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{broken}:{line}: ")
    assert "could not parse expression" in problems[0] and "unclosed left parenthesis" in problems[0]
