"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by playwright; no browser
download): upload a weekly sample on the real Upload page, see the predictions link, save a screenshot.

Two ways to run it:
- default: the test starts ``streamlit run frontend/app/Home.py`` against the test stack's API, and
  launches the run with ``remarketing.launch.launch`` (what the storage trigger's function calls) once the
  upload is in ``weekly/``;
- against ``remarketing up``: set ``REMARKETING_E2E_UI_URL`` (e.g. http://127.0.0.1:8501) and the stack's
  ``REMARKETING_*`` settings; nothing is started or launched by the test: the bridge and function do it.
The screenshot goes to ``$REMARKETING_E2E_SCREENSHOT_DIR`` (default ``build/e2e``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from remarketing.processes import free_port
from remarketing.settings import Settings
from tests.frontend.conftest import csv_bytes, weekly_frame

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]


def streamlit_command(port: int) -> list[str]:
    """The command line `remarketing up` uses too (see the README)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "frontend" / "app" / "Home.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
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


def test_upload_a_weekly_sample_in_chromium_and_get_the_predictions_link(ui, bank_bytes, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    url, settings, launch_here = ui
    sample = tmp_path / "weekly-sample.csv"
    sample.write_bytes(csv_bytes(weekly_frame(bank_bytes, step=100)))
    shots = Path(os.environ.get("REMARKETING_E2E_SCREENSHOT_DIR", ROOT / "build" / "e2e"))
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{url}/Upload", wait_until="networkidle")
            page.locator("input[type=file]").set_input_files(str(sample))
            expect(page.get_by_text("the columns fit")).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="Score this file").click()
            heading = page.get_by_text(re.compile(r"Run scoring-[0-9a-f]{16}"))
            expect(heading).to_be_visible(timeout=30_000)
            run_id = re.search(r"scoring-[0-9a-f]{16}", heading.inner_text()).group(0)
            if launch_here:  # no storage trigger in this stack: do what the function does
                from pipelines.launchers import launcher_for
                from remarketing.launch import launch

                receipt = httpx.get(
                    f"http://127.0.0.1:{settings.api_port}/runs/{run_id}",
                    headers={"X-API-Key": _key(settings)},
                ).json()
                bucket, name = receipt["source"]["uri"].removeprefix("gs://").split("/", 1)
                generation = receipt["source"]["generation"]
                launch(bucket, name, generation, settings=settings, launcher=launcher_for(settings))
            link = page.get_by_role("link", name="predictions.csv")
            expect(link).to_be_visible(timeout=240_000)
            # the sample is smaller than the default budget of 1,000: the page says everyone is called
            expect(page.get_by_text("The budget covers every customer in this file")).to_be_visible()
            page.wait_for_timeout(1500)  # let the table's canvas draw
            page.screenshot(path=str(shots / "upload-success.png"), full_page=True)
            href = link.get_attribute("href")
        finally:
            browser.close()
    response = httpx.get(href)
    assert response.status_code == 200 and response.text.startswith("customer_id,probability,rank")
    assert (shots / "upload-success.png").stat().st_size > 10_000


def _key(settings: Settings) -> str:
    from remarketing.secrets import api_key

    return api_key(settings)
