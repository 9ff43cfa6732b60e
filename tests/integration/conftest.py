"""The real local stack for integration tests: the emulator and an MLflow server on free loopback
ports, with a state folder in a temporary directory; stopped by PID at the end."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from remarketing.local import services
from remarketing.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("state")
    settings = Settings(
        state_dir=Path(state), emulator_port=free_port(), mlflow_port=free_port(), api_port=free_port()
    )
    services.ensure_stack(settings)
    yield settings
    services.down(settings)


MODEL = "remarketing-bank-marketing"
LOW_FLOORS = {"REMARKETING_FLOOR_ROC_AUC": "0.5", "REMARKETING_FLOOR_LIFT_AT_10PCT": "1.0"}


@pytest.fixture(scope="session")
def trained(stack, bank_sample, tmp_path_factory):
    """One real training run on a ~4,500-row time-ordered sample with an extra unknown column; its model
    becomes the champion that the scoring tests use."""
    import io

    import pandas as pd

    from tests.integration.helpers import run_cli

    frame = pd.read_csv(io.BytesIO(bank_sample), sep=";")
    frame["shoe_size"] = 42
    path = tmp_path_factory.mktemp("data") / "campaign-sample.csv"
    frame.to_csv(path, sep=";", index=False)
    result = run_cli("train", str(path), env={**stack.to_env(), **LOW_FLOORS})
    assert result.code == 0, result.stderr
    return result, path


@pytest.fixture
def settings(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The stack's settings, also exported as REMARKETING_* so CLI invocations and children see them."""
    for key, value in stack.to_env().items():
        monkeypatch.setenv(key, value)
    return stack
