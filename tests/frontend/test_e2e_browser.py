"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by playwright; no browser
download): upload a weekly sample on the real Upload page, see the predictions link, save a screenshot.

Two ways to run it:
- default: the test starts ``streamlit run frontend/app/Home.py`` against the test stack's API, and
  launches the run with ``remarketing.launch.launch`` (what the storage trigger's function calls) once the
  upload is in ``weekly/``;
- against ``remarketing up``: set ``REMARKETING_E2E_UI_URL`` (e.g. http://127.0.0.1:8501) and the stack's
  ``REMARKETING_*`` settings; nothing is started or launched by the test: the bridge and function do it.
Screenshots of every page, for both datasets, go to ``$REMARKETING_E2E_SCREENSHOT_DIR`` (default
``build/e2e``); ``make screenshots`` writes them to ``docs/screenshots/`` (refresh them when pages change).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from remarketing.processes import free_port
from remarketing.settings import Settings
from remarketing.uploads import widget_mb
from tests.frontend.conftest import csv_bytes, weekly_frame

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHART = "[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas"  # Altair, drawn by Vega
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]


def streamlit_command(port: int) -> list[str]:
    """The command line `remarketing up` uses too (see the README)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "frontend" / "app" / "Home.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--server.maxUploadSize", str(widget_mb(Settings().max_upload_bytes)),
    ]  # fmt: skip


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"streamlit at {url} did not become healthy in {timeout}s")


@pytest.fixture
def ui(request, tmp_path):
    """(UI address, settings, whether the test must launch runs itself)."""
    external = os.environ.get("REMARKETING_E2E_UI_URL")
    if external:
        yield external.rstrip("/"), Settings(), False
        return
    settings = request.getfixturevalue("settings")
    request.getfixturevalue("trained")
    port = free_port()
    env = {
        **os.environ,
        **settings.to_env(),
        "REMARKETING_API_URL": f"http://127.0.0.1:{settings.api_port}",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        streamlit_command(port), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}", settings, True
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def shots_dir() -> Path:
    shots = Path(os.environ.get("REMARKETING_E2E_SCREENSHOT_DIR", ROOT / "build" / "e2e"))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium.new_page(viewport={"width": 1400, "height": 1800})
        finally:
            chromium.close()


def drawn(page) -> None:
    """Wait for the tables' canvases, then two animation frames: what is on screen has been painted."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid=stDataFrame] canvas").first).to_be_visible(timeout=30_000)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def upload_and_wait(
    page,
    url: str,
    settings: Settings,
    launch_here: bool,
    sample: Path,
    dataset: str,
    budget: int | None = None,
) -> str:
    """Upload ``sample`` on the Upload page under ``dataset``; the run id once its predictions link shows."""
    from playwright.sync_api import expect

    page.goto(f"{url}/Upload?dataset={dataset}", wait_until="networkidle")
    if budget is not None:
        field = page.get_by_label("Customers to call", exact=True).and_(page.locator("input[type=number]"))
        field.fill(str(budget))
        field.press("Enter")
        expect(field).to_have_value(str(budget))
    page.locator("input[type=file]").first.set_input_files(str(sample))  # the weekly file, not outcomes
    expect(page.get_by_text("the columns fit")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Score this file").click()
    heading = page.get_by_text(re.compile(r"Run scoring-[0-9a-f]{16}"))
    expect(heading).to_be_visible(timeout=30_000)
    run_id = re.search(r"scoring-[0-9a-f]{16}", heading.inner_text()).group(0)
    if launch_here:  # no storage trigger in this stack: do what the function does
        from pipelines.launchers import launcher_for
        from remarketing.launch import launch

        receipt = httpx.get(
            f"http://127.0.0.1:{settings.api_port}/runs/{run_id}", headers={"X-API-Key": _key(settings)}
        ).json()
        bucket, name = receipt["source"]["uri"].removeprefix("gs://").split("/", 1)
        launch(
            bucket, name, receipt["source"]["generation"], settings=settings, launcher=launcher_for(settings)
        )
    expect(page.get_by_role("link", name="predictions.csv")).to_be_visible(timeout=240_000)
    return run_id


def tour(page, url: str, dataset: str, run_id: str, meaning: str) -> list[Path]:
    """Runs, Model and Explain for ``dataset``, each screenshot once what it shows has drawn."""
    from playwright.sync_api import expect

    shots = shots_dir()
    page.goto(f"{url}/Runs", wait_until="networkidle")
    expect(page.get_by_text("Steps", exact=True)).to_be_visible(timeout=30_000)
    expect(page.locator(CHART).first).to_be_visible(timeout=30_000)
    drawn(page)
    page.screenshot(path=str(shots / f"{dataset}-runs.png"), full_page=True)
    page.goto(f"{url}/Model?dataset={dataset}", wait_until="networkidle")
    expect(page.get_by_text("What drives the model (global SHAP)")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid=stImage] img").nth(3)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(shots / f"{dataset}-model.png"), full_page=True)
    page.goto(f"{url}/Explain?run_id={run_id}", wait_until="networkidle")
    expect(page.get_by_text(f"Probability of {meaning}")).to_be_visible(timeout=30_000)
    expect(page.locator(CHART).first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(shots / f"{dataset}-explain.png"), full_page=True)
    return [shots / f"{dataset}-{name}.png" for name in ("runs", "model", "explain")]


def test_upload_a_weekly_sample_in_chromium_and_get_the_predictions_link(ui, browser, bank_bytes, tmp_path):
    from playwright.sync_api import expect

    url, settings, launch_here = ui
    sample = tmp_path / "weekly-sample.csv"
    sample.write_bytes(csv_bytes(weekly_frame(bank_bytes, step=20)))
    page = browser
    shots = shots_dir()
    page.goto(url, wait_until="networkidle")
    expect(page.get_by_text("Champion", exact=True)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(shots / "home.png"), full_page=True)
    run_id = upload_and_wait(page, url, settings, launch_here, sample, "bank-marketing", budget=50)
    expect(page.get_by_text("Top customers")).to_be_visible()
    drawn(page)
    page.screenshot(path=str(shots / "bank-marketing-upload.png"), full_page=True)
    href = page.get_by_role("link", name="predictions.csv").get_attribute("href")
    pages = tour(page, url, "bank-marketing", run_id, "subscribing to a term deposit")
    response = httpx.get(href)
    assert response.status_code == 200 and response.text.startswith("customer_id,probability,rank")
    # the week's outcomes come back on the Upload page; the Monitoring page shows them against the promise
    outcomes = tmp_path / "week-outcomes.csv"
    pd.read_csv(sample, sep=";", dtype={"customer_id": str})[["customer_id", "y"]].to_csv(
        outcomes, sep=";", index=False
    )
    monitoring = send_outcomes(page, url, settings, launch_here, run_id, outcomes)
    page.screenshot(path=str(shots / "bank-marketing-outcomes.png"), full_page=True)
    page.goto(f"{url}/Monitoring", wait_until="networkidle")
    expect(page.get_by_text("Calibration by decile of the score")).to_be_visible(timeout=30_000)
    expect(page.locator(CHART).nth(1)).to_be_visible(timeout=30_000)
    drawn(page)
    page.screenshot(path=str(shots / "bank-marketing-monitoring.png"), full_page=True)
    assert monitoring.startswith("monitoring-")
    pages.append(shots / "bank-marketing-monitoring.png")
    # what Prometheus saw of it all: the runs just made among the key panels
    page.goto(f"{url}/Operations", wait_until="networkidle")
    expect(page.get_by_text("What Prometheus reaches")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Pipeline runs by kind and status")).to_be_visible(timeout=30_000)
    expect(page.locator(CHART).first).to_be_visible(timeout=30_000)
    drawn(page)
    page.screenshot(path=str(shots / "operations.png"), full_page=True)
    pages.append(shots / "operations.png")
    assert all(p.stat().st_size > 10_000 for p in [shots / "bank-marketing-upload.png", *pages])


def send_outcomes(page, url: str, settings: Settings, launch_here: bool, run_id: str, outcomes: Path) -> str:
    """The Upload page's Outcomes section: the scored week chosen, the file sent; launched here when no
    trigger runs; the monitoring run's id once the page says the outcomes were measured."""
    from playwright.sync_api import expect

    page.goto(f"{url}/Upload?dataset=bank-marketing", wait_until="networkidle")
    expect(page.get_by_text("Outcomes of a past week")).to_be_visible(timeout=30_000)
    # the newest scored week is the one offered first: the one just scored (checked below by the API)
    expect(page.get_by_label("The scored week they belong to")).to_be_visible()
    page.locator("input[type=file]").nth(1).set_input_files(str(outcomes))
    page.get_by_role("button", name="Send the outcomes").click()
    heading = page.get_by_text(re.compile(r"Monitoring run monitoring-[0-9a-f]{16}"))
    expect(heading).to_be_visible(timeout=30_000)
    monitoring = re.search(r"monitoring-[0-9a-f]{16}", heading.inner_text()).group(0)
    if launch_here:
        from pipelines.launchers import launcher_for
        from remarketing.launch import launch
        from remarketing.runs import run_id_for
        from remarketing.storage import Storage

        storage, bucket = Storage(settings), settings.landing_bucket
        for uri in storage.list(f"gs://{bucket}/outcomes/"):  # the object the page's upload created
            name, generation = uri.removeprefix(f"gs://{bucket}/"), storage.stat(uri).generation
            if run_id_for(bucket, name, generation) == monitoring:
                launch(bucket, name, generation, settings=settings, launcher=launcher_for(settings))
    expect(page.get_by_text(re.compile(r"outcomes measured: the targeted converted"))).to_be_visible(
        timeout=240_000
    )
    record = httpx.get(
        f"http://127.0.0.1:{settings.api_port}/runs/{monitoring}", headers={"X-API-Key": _key(settings)}
    ).json()
    assert record["details"]["scoring_run"] == run_id
    return monitoring


def test_the_second_dataset_through_every_page_in_chromium(ui, browser, thera_trained, thera_bytes, tmp_path):
    from playwright.sync_api import expect

    url, settings, launch_here = ui
    lines = thera_bytes.decode().splitlines(keepends=True)
    sample = tmp_path / "thera-week.csv"
    sample.write_text(lines[0] + "".join(lines[-400:]))
    page = browser
    run_id = upload_and_wait(page, url, settings, launch_here, sample, "thera-bank")
    expect(page.get_by_text("comma (,)-separated", exact=False).first).to_be_visible()
    # the sample is smaller than the default budget of 1,000: the page says everyone is called
    expect(page.get_by_text("The budget covers every customer in this file")).to_be_visible()
    drawn(page)
    page.screenshot(path=str(shots_dir() / "thera-bank-upload.png"), full_page=True)
    pages = tour(page, url, "thera-bank", run_id, "taking the personal loan")
    assert all(p.stat().st_size > 10_000 for p in pages)


def _key(settings: Settings) -> str:
    from remarketing.secrets import api_key

    return api_key(settings)
