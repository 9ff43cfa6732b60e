"""Shared fixtures: the real example data (bank-full ships in data/; Thera Bank, which has no licence to
share, is looked for in REMARKETING_DATA_DIR or the shared data folder beside the clone), samples of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_stack import services
from remarketing import examples
from remarketing.settings import Settings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def bank_bytes() -> bytes:
    found = examples.find(examples.BANK_FULL)
    if found is None:
        pytest.fail(f"{examples.BANK_FULL}(.gz) is missing under {examples.data_dir()}: it ships in data/")
    return examples.read_bytes(found)


@pytest.fixture(scope="session")
def thera_bytes() -> bytes:
    found = examples.find(examples.THERA_BANK) or examples.find(examples.THERA_BANK, SHARED_DATA)
    if found is None:
        pytest.skip(
            f"Thera Bank is not shipped (no licence to share it): put {examples.THERA_BANK} under "
            "REMARKETING_DATA_DIR to run this (data/README.md says where to get it)"
        )
    return examples.read_bytes(found)


def every_nth_row(data: bytes, step: int) -> bytes:
    """A time-ordered sample: the header and every ``step``-th data row (keeps the drift of the file)."""
    lines = data.splitlines(keepends=True)
    return b"".join([lines[0], *lines[1::step]])


@pytest.fixture(scope="session")
def bank_sample(bank_bytes: bytes) -> bytes:
    """About 4,500 rows of bank-full.csv in time order."""
    return every_nth_row(bank_bytes, 10)


# --- the real local stack, shared by every test folder (one per session) ----------------------------
# The emulator, MLflow, the API, Prometheus, its Pushgateway and Alertmanager on free loopback ports, with
# a state folder in a temporary directory, stopped by PID at the end; and one real training run whose model
# is the champion.


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("state")
    # Prometheus too (a scrape a second), so tests can see what a run or a dead server did to the series.
    # Drift profiles and reports name no category fewer than 40 training rows hold: the training sample's
    # job 'unknown' (30 rows) is one, which tests/frontend/test_personal_data.py looks for.
    settings = services.private_settings(Path(state), scrape_interval_seconds=1, min_category_rows=40)
    services.ensure_stack(settings, (*services.CORE, *services.OBSERVABILITY))
    yield settings
    services.down(settings)


MODEL = "remarketing-bank-marketing"


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
    result = run_cli("train", str(path), env=stack.to_env())
    assert result.code == 0, result.stderr
    return result, path


@pytest.fixture(scope="session")
def thera_trained(stack, thera_bytes, tmp_path_factory):
    """The second use case trained through the same pipeline: its champion for the app's pages."""
    from tests.integration.helpers import run_cli

    path = tmp_path_factory.mktemp("thera") / "thera.csv"
    path.write_bytes(thera_bytes)
    result = run_cli("train", str(path), "--dataset", "thera-bank", env=stack.to_env())
    assert result.code == 0, result.stderr
    return result


@pytest.fixture
def settings(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The stack's settings, also exported as REMARKETING_* so CLI invocations and children see them."""
    for key, value in stack.to_env().items():
        monkeypatch.setenv(key, value)
    return stack


# --- Google identity and HTTP, faked at the outermost client ---------------------------------------------
# There is no metadata server here: Google's credentials are faked where they are made (google.auth.default,
# google.oauth2.id_token.fetch_id_token_credentials) and every token they mint is kept, so a test asserts
# what a client was given. Each token names its kind and audience.


class FakeCredentials:
    def __init__(self, minted: list[str], kind: str) -> None:
        self.minted, self.kind = minted, kind
        self.token: str | None = None
        self.valid = False  # as google-auth's before the first refresh, or once expired

    def refresh(self, request) -> None:
        self.token = f"{self.kind}#{len(self.minted) + 1}"
        self.valid = True
        self.minted.append(self.token)


class FakeGoogle:
    def __init__(self) -> None:
        self.minted: list[str] = []
        self.scopes: list = []
        self.credentials: dict[str, FakeCredentials] = {}

    def default(self, scopes=None, **kwargs):
        self.scopes.append(scopes)
        return self.credentials.setdefault("access", FakeCredentials(self.minted, "access")), "project"

    def id_token_credentials(self, audience, request=None, **kwargs):
        return self.credentials.setdefault(audience, FakeCredentials(self.minted, f"id:{audience}"))

    def expire(self) -> None:
        for credentials in self.credentials.values():
            credentials.valid = False


@pytest.fixture
def google_identity(monkeypatch):
    import google.auth
    from google.oauth2 import id_token

    from cloud_auth import tokens

    tokens.forget()
    fake = FakeGoogle()
    monkeypatch.setattr(google.auth, "default", fake.default)
    monkeypatch.setattr(id_token, "fetch_id_token_credentials", fake.id_token_credentials)
    yield fake
    tokens.forget()


class FakeHttpx:
    """httpx's transport, faked (the addresses tested are a cloud's): every request is kept, ``answer``
    makes the response."""

    def __init__(self) -> None:
        import httpx

        self.requests: list = []
        self.answer = lambda request: httpx.Response(404, json={})

    def handle_request(self, transport, request):
        request.read()
        self.requests.append(request)
        return self.answer(request)


@pytest.fixture
def httpx_transport(monkeypatch):
    import httpx

    fake = FakeHttpx()
    monkeypatch.setattr(
        httpx.HTTPTransport, "handle_request", lambda self, request: fake.handle_request(self, request)
    )
    return fake


# --- a real PostgreSQL server (the customer lookup table's cloud store), one per session -----------------
@pytest.fixture(scope="session")
def postgres_server():
    from tests import postgres

    server = postgres.start()
    yield server
    postgres.stop(server)


@pytest.fixture
def lookup_database(postgres_server):
    """A fresh database of the session's server, as the lookup's role (no superuser) over TCP."""
    from remarketing.customer_lookup_postgres import Database
    from tests import postgres

    return Database(
        host="127.0.0.1",
        port=postgres_server.port,
        dbname=postgres_server.new_database(),
        user=postgres.ROLE,
        password=postgres.PASSWORD,
        sslmode="disable",  # the test server has no certificate; Cloud SQL requires TLS (require)
    )
