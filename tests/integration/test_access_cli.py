"""``remarketing keys`` and ``remarketing audit`` as an operator runs them, on the real emulator: a key
is shown once and works with its role, a revoked one is refused, key changes are audited as the CLI's
user, and ``audit verify`` names the first record that was changed or removed."""

from __future__ import annotations

import getpass
import json

import pytest

from remarketing.access import AccessBook
from remarketing.audit import AuditLog
from remarketing.secrets import api_key
from remarketing.storage import Storage, join
from tests.integration.helpers import run_cli

pytestmark = pytest.mark.integration


def test_keys_are_created_listed_and_revoked_and_each_change_is_audited(stack):
    env = stack.to_env()
    created = run_cli("keys", "create", "carl-cli", "--role", "viewer", env=env)
    assert created.code == 0, created.stderr
    key = created.json["key"]
    assert key.startswith("rmk_") and "not shown again" in created.stderr
    book = AccessBook(Storage(stack), stack.artifacts_root, api_key(stack))
    assert book.authenticate(key).role == "viewer"
    again = run_cli("keys", "create", "carl-cli", "--role", "admin", env=env)
    assert again.code == 1 and "exists" in again.json["error"]["message"]
    bad = run_cli("keys", "create", "carl-cli", "--role", "boss", env=env)
    assert bad.code == 2  # click names the allowed roles
    listed = run_cli("keys", "list", env=env)
    assert {"name": "carl-cli", "role": "viewer"}.items() <= next(
        p for p in listed.json["principals"] if p["name"] == "carl-cli"
    ).items()
    assert key not in json.dumps(listed.json)
    revoked = run_cli("keys", "revoke", "carl-cli", env=env)
    assert revoked.code == 0 and book.authenticate(key).revoked
    unknown = run_cli("keys", "revoke", "nobody", env=env)
    assert unknown.code == 1 and "no principal named 'nobody'" in unknown.json["error"]["message"]
    shown = run_cli("audit", "show", "--who", f"cli:{getpass.getuser()}", "--limit", "2", env=env)
    assert [(r["action"], r["what"]["name"]) for r in shown.json["records"]] == [
        ("key-revoked", "carl-cli"),
        ("key-created", "carl-cli"),
    ]


def test_identities_are_granted_changed_listed_and_revoked_and_each_change_is_audited(stack):
    """People who sign in through IAP: an email bound to a role, no key shown; a role changed by granting
    again; revoked, then let in again."""
    env = stack.to_env()
    granted = run_cli("identities", "grant", "Dora.Data@Bank.example", "--role", "viewer", env=env)
    assert granted.code == 0, granted.stderr
    assert granted.json == {
        "status": "success",
        "email": "dora.data@bank.example",
        "role": "viewer",
        "was": None,
    }
    assert "key" not in granted.json and "rmk_" not in granted.stderr
    book = AccessBook(Storage(stack), stack.artifacts_root, api_key(stack))
    assert book.identify("dora.data@bank.example").role == "viewer"
    changed = run_cli("identities", "grant", "dora.data@bank.example", "--role", "analyst", env=env)
    assert changed.json["was"] == "viewer" and "has the analyst role (was viewer)" in changed.stderr
    same = run_cli("identities", "grant", "dora.data@bank.example", "--role", "analyst", env=env)
    assert same.code == 0 and "has the analyst role already: nothing changed" in same.stderr
    group = run_cli("identities", "grant", "group:data@bank.example", "--role", "viewer", env=env)
    assert group.code == 1 and "give the person's email alone" in json.dumps(group.json)
    listed = run_cli("identities", "list", env=env)
    dora = next(i for i in listed.json["identities"] if i["email"] == "dora.data@bank.example")
    assert (dora["role"], dora["revoked_at"]) == ("analyst", None)
    revoked = run_cli("identities", "revoke", "dora.data@bank.example", env=env)
    assert revoked.code == 0 and book.identify("dora.data@bank.example").revoked
    shown = run_cli("audit", "show", "--who", f"cli:{getpass.getuser()}", "--limit", "3", env=env)
    assert [(r["action"], r["what"]) for r in shown.json["records"]] == [
        ("identity-revoked", {"email": "dora.data@bank.example"}),
        ("identity-granted", {"email": "dora.data@bank.example", "role": "analyst", "was": "viewer"}),
        ("identity-granted", {"email": "dora.data@bank.example", "role": "viewer", "was": None}),
    ]


def test_audit_verify_names_the_first_changed_or_removed_record(stack):
    env = stack.to_env()
    storage = Storage(stack)
    audit = AuditLog(storage, stack.artifacts_root)
    for i in range(3):
        audit.append(who="test", action="probe", what={"i": i}, result="ok")
    whole = run_cli("audit", "verify", env=env)
    assert whole.code == 0, whole.stderr
    total = whole.json["records"]
    middle = join(stack.artifacts_root, "audit", "records", f"{total - 1:012d}.json")
    original = storage.read_bytes(middle)
    try:
        edited = json.loads(original)
        edited["who"] = "someone else"
        storage.write_bytes(middle, json.dumps(edited).encode())
        changed = run_cli("audit", "verify", env=env)
        assert changed.code == 1
        assert changed.json["error"]["message"].startswith(f"record {total - 1} was changed")
        assert changed.json["broken_record"] == total - 1
        storage.delete(middle)
        removed = run_cli("audit", "verify", env=env)
        assert removed.code == 1 and removed.json["error"]["message"].startswith(
            f"record {total - 1} is missing"
        )
    finally:  # the session's trail whole again for the tests after this one
        storage.write_bytes(middle, original)
    assert run_cli("audit", "verify", env=env).code == 0
