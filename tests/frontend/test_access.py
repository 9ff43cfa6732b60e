"""Roles instead of one key, and the audit trail, on the real stack: every route declares its role; a
viewer, an analyst and a revoked key get what their role allows (401/403 otherwise), and every refusal,
upload, download and lookup is a record of the hash-chained trail, with the customer pseudonymised. In the
cloud, people signed in to the app through IAP are who the app's calls are from: their verified email has
the role the access book binds it to."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cloud_auth.iap import CERTS_URL, FORWARDED_HEADER, CachedKeys, IapVerifier
from frontend.api import deps
from frontend.api.audit_trail import AUDITED
from frontend.api.main import create_app
from remarketing.access import AccessBook
from remarketing.audit import AuditLog
from remarketing.personal_data import pseudonyms
from remarketing.secrets import api_key
from remarketing.storage import Storage
from tests.cloud_auth.fake_iap import AUDIENCE, KeyFile, Signer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def book(stack) -> AccessBook:
    return AccessBook(Storage(stack), stack.artifacts_root, api_key(stack))


class Trail:
    """The audit trail as the tests read it: once the app's shipper has written what it queued."""

    def __init__(self, app, log: AuditLog) -> None:
        self.app, self.log = app, log

    def show(self, **filters):
        assert self.app.state.audit.settle()
        return self.log.show(**filters)

    def verify(self):
        assert self.app.state.audit.settle()
        return self.log.verify()


@pytest.fixture(scope="module")
def audit(stack, app) -> Trail:
    return Trail(app, AuditLog(Storage(stack), stack.artifacts_root))


def as_key(app, key: str) -> TestClient:
    return TestClient(app, headers={"X-API-Key": key})


def role_of(route: APIRoute) -> list[str]:
    names = [d.call.__name__ for d in route.dependant.dependencies if d.call is not None]
    return [n for n in names if n.startswith("require")]


def test_every_route_but_the_public_ones_declares_one_role():
    from frontend.api import operations
    from frontend.api.main import _router

    routes = [r for r in [*_router().routes, *operations.router.routes] if isinstance(r, APIRoute)]
    assert len(routes) > 15
    undeclared = [r.path for r in routes if len(role_of(r)) != 1]
    assert undeclared == []
    roles = {(sorted(r.methods)[0], r.path): role_of(r)[0] for r in routes}
    assert roles[("GET", "/runs")] == "requires_viewer"
    assert roles[("GET", "/runs/{run_id}/predictions")] == "requires_analyst"
    assert roles[("GET", "/customers/{customer_id}")] == "requires_analyst"
    assert roles[("POST", "/uploads")] == "requires_analyst"
    assert roles[("POST", "/experiments")] == "requires_admin"
    assert roles[("POST", "/retraining")] == "require_admin_or_scheduler"
    # every audited route exists (a renamed route would silently stop being audited)
    declared = {(m, r.path) for r in routes for m in r.methods} | {("GET", "/download")}
    assert set(AUDITED) <= declared


def test_the_openapi_document_names_each_credential(app):
    schemes = app.openapi()["components"]["securitySchemes"]
    assert {name: s.get("name", s.get("scheme")) for name, s in schemes.items()} == {
        "APIKeyHeader": "X-API-Key",
        "HTTPBearer": "bearer",
        "IAPAssertion": FORWARDED_HEADER,
    }


def test_a_viewer_sees_runs_and_models_but_no_customer(app, book, audit, scored, stack):
    viewer = as_key(app, book.create("viewer-vera", "viewer"))
    run_id = scored.uploads[0]["run_id"]
    assert viewer.get("/runs").status_code == 200
    assert viewer.get("/models").status_code == 200
    run = viewer.get(f"/runs/{run_id}").json()
    assert run["status"] == "success" and run["predictions URL"] is None
    assert "analyst role" in run["predictions_url_withheld"]
    for path in (f"/runs/{run_id}/predictions", "/customers/C036168", f"/runs/{run_id}/explanations"):
        refused = viewer.get(path, params={"customer_id": "C036168"})
        assert refused.status_code == 403, path
        assert refused.json()["detail"] == "'viewer-vera' is a viewer: this needs the analyst role"
    assert viewer.post("/experiments", json={"challenger": "1"}).status_code == 403
    records = audit.show(who="viewer-vera")
    assert [r["result"] for r in records] == ["403 refused: role"] * 4
    lookup = next(r for r in records if r["action"] == "customer-lookup")
    assert lookup["customer"] == pseudonyms(stack).of("C036168") and lookup["role"] == "viewer"
    assert "C036168" not in json.dumps(records)  # the id itself is never in the trail


def test_an_analyst_may_list_and_look_up_but_not_run_experiments(app, book, audit, scored):
    analyst = as_key(app, book.create("analyst-ana", "analyst"))
    run_id = scored.uploads[0]["run_id"]
    assert analyst.get(f"/runs/{run_id}").json()["predictions URL"].startswith("http")
    listed = analyst.get(f"/runs/{run_id}/predictions", params={"limit": 3})
    assert listed.status_code == 200
    assert analyst.post("/experiments", json={"challenger": "1"}).status_code == 403
    seen = audit.show(who="analyst-ana", action="contact-list-view")
    assert seen[0]["what"] == {"run_id": run_id, "limit": "3", "client": "testclient"}
    assert seen[0]["result"] == "200"
    assert audit.show(who="analyst-ana", action="predictions-link")[0]["what"]["run_id"] == run_id


def test_a_revoked_or_unknown_key_is_401_and_audited(app, book, audit, anonymous):
    key = book.create("leaver-leo", "analyst")
    assert as_key(app, key).get("/runs").status_code == 200
    book.revoke("leaver-leo")
    refused = as_key(app, key).get("/runs")
    assert refused.status_code == 401 and refused.json()["detail"] == "the key of 'leaver-leo' was revoked"
    assert audit.show(who="leaver-leo")[0]["result"] == "401 refused: not authenticated"
    assert anonymous.get("/models").status_code == 401
    last = audit.show(limit=1)[0]
    assert (last["who"], last["action"]) == ("anonymous", "request GET /models")
    assert as_key(app, "rmk_made-up").get("/runs").status_code == 401
    assert audit.show(limit=1)[0]["who"].startswith("unknown key sha256:")


def test_keys_are_stored_hashed_and_names_are_checked(book, stack):
    key = book.create("hashed-hal", "viewer")
    stored = Storage(stack).read_text(book.uri)
    assert key not in stored and json.loads(stored)["principals"]["hashed-hal"]["role"] == "viewer"
    from remarketing.errors import Conflict, ParameterError

    with pytest.raises(Conflict, match="exists"):
        book.create("hashed-hal", "viewer")
    with pytest.raises(ParameterError) as bad:
        book.create("operator", "boss")
    assert len(bad.value.problems) == 2


def test_uploads_and_downloads_are_in_the_trail_and_the_chain_is_whole(
    scored, audit, stack, anonymous, client
):
    ours = {u["run_id"] for u in scored.uploads}  # other tests' uploads, refused ones too, are in the trail
    uploads = [r for r in audit.show(action="upload") if r["what"].get("run_id") in ours]
    assert {r["what"]["run_id"] for r in uploads} == ours
    assert all(r["who"] == "operator" and r["result"] == "202" for r in uploads)
    url = client.get(f"/runs/{scored.uploads[0]['run_id']}").json()["predictions URL"]
    assert anonymous.get(url).status_code == 200
    download = audit.show(action="download", limit=1)[0]
    assert download["who"] == "signed link" and download["result"] == "200"
    assert "signature" not in download["what"] and download["what"]["uri"].endswith("predictions.csv")
    verdict = audit.verify()
    assert verdict.ok and verdict.records >= len(uploads) + 1


def test_a_customer_is_looked_up_by_id_with_the_latest_score_and_the_ones_before(
    scored, client, audit, stack
):
    """The lookup table the two scoring runs' publish steps wrote: the newer run's row equals the
    customer's row of that run's predictions.csv and explanation; the older run is the history."""
    first, second = sorted(scored.records, key=lambda r: r.updated)
    listed = client.get(f"/runs/{second.run_id}/predictions", params={"limit": 1})
    assert listed.status_code == 200, listed.text
    shown = listed.json()["rows"][0]
    customer_id = str(shown["customer_id"])
    found = client.get(f"/customers/{customer_id}")
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["run_id"], body["customer_id"]) == (second.run_id, customer_id)
    explained = client.get(f"/runs/{second.run_id}/explanations", params={"customer_id": customer_id}).json()
    for key in ("rank", "group", "reasons", "model_version"):
        assert body[key] == explained[key], key
    # the lookup keeps the values typed (the explanation reads them from the uploaded CSV's text)
    assert {f: str(v) for f, v in body["values"].items()} == {
        f: str(float(v)) if isinstance(body["values"][f], float) else v
        for f, v in explained["values"].items()
    }
    assert body["probability"] == pytest.approx(explained["probability"], abs=5e-5)  # the CSV's 4 digits
    assert body["contributions"] == pytest.approx(explained["contributions"])
    assert body["base_value"] == pytest.approx(explained["base_value"])
    assert [h["run_id"] for h in body["history"]] == [first.run_id]
    record = audit.show(action="customer-lookup", limit=1)[0]
    assert record["customer"] == pseudonyms(stack).of(customer_id) and record["result"] == "200"


def test_a_formula_like_id_is_found_as_it_was_uploaded(scored, client):
    from urllib.parse import quote

    found = client.get(f"/customers/{quote('=HYPERLINK(A1)', safe='')}")
    assert found.status_code == 200 and found.json()["customer_id"] == "=HYPERLINK(A1)"


@pytest.mark.parametrize(
    ("customer_id", "status"),
    [
        ("x' OR '1'='1", 404),
        ("C1; DROP TABLE scores; --", 404),
        ("..%2F..%2Fsecrets%2Fapi-key", 404),
        ("..", 404),
        ("C" * 10_000, 422),
    ],
)
def test_a_hostile_customer_id_is_404_or_422_never_a_500(scored, client, customer_id, status):
    answer = client.get(f"/customers/{customer_id}")
    assert answer.status_code == status, answer.text
    assert client.get(f"/customers/{scored.records[0].source.sha256[:8]}").status_code == 404


def test_a_lookup_table_that_cannot_be_reached_is_503_naming_it_never_404(stack, key):
    """The API of a deployment whose PostgreSQL lookup table is down (nothing listens where the settings
    say): the customer is not "not found", the table is unavailable."""
    from remarketing.processes import free_port

    port = free_port()
    down = stack.model_copy(
        update={"lookup_db_host": "127.0.0.1", "lookup_db_port": port, "lookup_db_sslmode": "disable"}
    )
    with TestClient(create_app(down), headers={"X-API-Key": key}) as client:
        answer = client.get("/customers/C1")
    assert answer.status_code == 503, answer.text
    assert f"postgresql://lookup@127.0.0.1:{port}/lookup is unavailable" in answer.json()["detail"]


# --- people signed in to the app through Identity-Aware Proxy (the cloud) --------------------------------
# The API as Terraform deploys it behind the app: REMARKETING_IAP_AUDIENCE set, the app forwarding the
# assertion IAP signed for the person. IAP's signing key and gstatic's key file are stand-ins
# (tests/cloud_auth/fake_iap.py); the verification, the access book and the trail are the real ones.
@dataclass
class Iap:
    app: Any
    signer: Signer
    key_file: KeyFile

    def as_person(self, assertion: str) -> TestClient:
        return TestClient(self.app, headers={FORWARDED_HEADER: assertion})


@pytest.fixture(scope="module")
def iap(stack) -> Iap:
    signer = Signer("iap-key-1")
    key_file = KeyFile({signer.kid: signer.public_pem()})
    app = create_app(stack.model_copy(update={"iap_audience": AUDIENCE}))
    checks = IapVerifier(AUDIENCE, keys=CachedKeys(key_file))
    app.dependency_overrides[deps.get_iap] = lambda: checks
    return Iap(app, signer, key_file)


def test_a_person_signed_in_through_iap_has_the_role_granted_to_their_email(iap, book, scored, stack):
    book.grant("ines.iap@bank.example", "analyst")
    person = iap.as_person(iap.signer.sign("Ines.IAP@bank.example"))
    run_id = scored.uploads[0]["run_id"]
    listed = person.get(f"/runs/{run_id}/predictions", params={"limit": 2})
    assert listed.status_code == 200, listed.text
    refused = person.post("/experiments", json={"challenger": "1"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "'ines.iap@bank.example' is an analyst: this needs the admin role"
    records = Trail(iap.app, AuditLog(Storage(stack), stack.artifacts_root)).show(who="ines.iap@bank.example")
    assert [(r["action"], r["role"], r["result"]) for r in records] == [
        ("experiment-start", "analyst", "403 refused: role"),
        ("contact-list-view", "analyst", "200"),
    ]
    assert iap.key_file.asked == [(CERTS_URL, "GET")]  # IAP's keys fetched once, then kept


def test_a_viewer_identity_on_an_analyst_route_and_an_unknown_or_revoked_one_are_403_and_audited(
    iap, book, scored, stack
):
    book.grant("vic.viewer@bank.example", "viewer")
    viewer = iap.as_person(iap.signer.sign("vic.viewer@bank.example"))
    assert viewer.get("/runs").status_code == 200
    refused = viewer.get("/customers/C036168")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "'vic.viewer@bank.example' is a viewer: this needs the analyst role"
    stranger = iap.as_person(iap.signer.sign("stranger@bank.example")).get("/runs")
    assert stranger.status_code == 403
    assert stranger.json()["detail"].startswith("stranger@bank.example has no role in this deployment")
    book.grant("leo.leaver@bank.example", "analyst")
    book.revoke_identity("leo.leaver@bank.example")
    revoked = iap.as_person(iap.signer.sign("leo.leaver@bank.example")).get("/runs")
    assert revoked.status_code == 403 and revoked.json()["detail"] == (
        "the role of leo.leaver@bank.example was revoked"
    )
    trail = Trail(iap.app, AuditLog(Storage(stack), stack.artifacts_root))
    lookup = trail.show(who="vic.viewer@bank.example", action="customer-lookup")[0]
    assert lookup["result"] == "403 refused: role" and lookup["customer"] == pseudonyms(stack).of("C036168")
    unknown = trail.show(who="stranger@bank.example")[0]
    assert (unknown["action"], unknown["role"], unknown["result"]) == (
        "request GET /runs",
        None,
        "403 refused: role",
    )
    assert trail.show(who="leo.leaver@bank.example")[0]["result"] == "403 refused: role"


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda s: s.sign(iat=int(time.time()) - 1200, exp=int(time.time()) - 600), "it expired"),
        (lambda s: Signer(s.kid).sign(), "its signature does not verify"),
        (
            lambda s: s.sign(aud="/projects/1/locations/europe-west1/services/other"),
            "it was signed for another application",
        ),
    ],
)
def test_an_expired_forged_or_misdirected_assertion_is_401_and_audited(iap, book, stack, forge, reason):
    book.grant("ana.analyst@bank.example", "analyst")  # the assertions' person: known, with a role
    refused = iap.as_person(forge(iap.signer)).get("/runs")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["detail"].startswith(f"the IAP assertion was refused: {reason}")
    last = Trail(iap.app, AuditLog(Storage(stack), stack.artifacts_root)).show(limit=1)[0]
    assert (last["who"], last["action"], last["result"]) == (
        "invalid IAP assertion",
        "request GET /runs",
        "401 refused: not authenticated",
    )


def test_without_iap_an_assertion_is_refused_and_a_key_with_one_is_too(app, iap, key, audit):
    """Locally there is no IAP: the API (the session's, no REMARKETING_IAP_AUDIENCE) takes keys only."""
    assertion = iap.signer.sign()
    local = TestClient(app, headers={FORWARDED_HEADER: assertion}).get("/runs")
    assert local.status_code == 401 and "takes no IAP assertion" in local.json()["detail"]
    assert audit.show(limit=1)[0]["who"] == "unverified IAP assertion"
    both = TestClient(iap.app, headers={FORWARDED_HEADER: assertion, "X-API-Key": key}).get("/runs")
    assert both.status_code == 401 and both.json()["detail"].startswith("send a key or an IAP assertion")
