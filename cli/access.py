"""``remarketing keys create | list | revoke`` (who may use the API with a key, remarketing.access),
``remarketing identities grant | list | revoke`` (the people who sign in to the app through IAP in the
cloud: their email bound to a role, no key) and ``remarketing audit verify | show`` (the hash-chained
record of who did what, remarketing.audit).

Identities are a command of their own, not a kind of key: a key is a secret made here and shown once, its
role fixed for its life (revoke it and make another); an identity is Google's, verified by IAP, has no
secret to show, and its role changes as the person's work does (grant it again with another role).

The CLI acts as the operator of the machine it runs on: what it changes is audited as ``cli:<user>``.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import click

from cli.output import emit, err, fail, or_fail
from remarketing.settings import Settings


def cli_principal() -> str:
    return f"cli:{getpass.getuser()}"


def _book_and_audit(settings: Settings) -> tuple[Any, Any]:
    from remarketing.access import AccessBook
    from remarketing.audit import AuditLog
    from remarketing.secrets import api_key
    from remarketing.storage import Storage

    storage = Storage(settings)
    return AccessBook(storage, settings.artifacts_root, api_key(settings)), AuditLog(
        storage, settings.artifacts_root
    )


@click.group()
def keys() -> None:
    """Named principals and their API keys (viewer, analyst, admin)."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["viewer", "analyst", "admin"]), required=True, help="What the key may do."
)
@click.pass_obj
def keys_create(settings: Settings, name: str, role: str) -> None:
    """A key for NAME with ROLE, printed once (only its hash is stored)."""
    book, audit = _book_and_audit(settings)
    key = or_fail(lambda: book.create(name, role))
    or_fail(
        lambda: audit.append(
            who=cli_principal(), action="key-created", what={"name": name, "role": role}, result="ok"
        )
    )
    err.print(f"{name} ({role}): keep this key now, it is not shown again")
    emit({"status": "success", "name": name, "role": role, "key": key})


@keys.command("list")
@click.pass_obj
def keys_list(settings: Settings) -> None:
    """Every principal, its role, and when it was created or revoked."""
    book, _ = _book_and_audit(settings)
    principals = or_fail(book.listed)
    for p in principals:
        state = f"revoked {p['revoked_at']}" if p["revoked_at"] else "active"
        err.print(f"  {p['name']:<24} {p['role']:<8} {state}")
    emit({"status": "success", "principals": principals})


@keys.command("revoke")
@click.argument("name")
@click.pass_obj
def keys_revoke(settings: Settings, name: str) -> None:
    """Revoke NAME's key: the next request with it is refused (401) and audited."""
    book, audit = _book_and_audit(settings)
    entry = or_fail(lambda: book.revoke(name))
    or_fail(lambda: audit.append(who=cli_principal(), action="key-revoked", what={"name": name}, result="ok"))
    err.print(f"{name}'s key is revoked")
    emit({"status": "success", "name": name, "revoked_at": entry["revoked_at"]})


@click.group()
def identities() -> None:
    """People who sign in to the app through IAP (in the cloud): their email bound to a role."""


@identities.command("grant")
@click.argument("email")
@click.option(
    "--role", type=click.Choice(["viewer", "analyst", "admin"]), required=True, help="What they may do."
)
@click.pass_obj
def identities_grant(settings: Settings, email: str, role: str) -> None:
    """Bind EMAIL (the account the person signs in to IAP with) to ROLE: a new one, a changed role, or a
    revoked one let in again. No key is made: IAP's signed assertion says who they are."""
    book, audit = _book_and_audit(settings)
    entry = or_fail(lambda: book.grant(email, role))
    if entry["was"] == role:
        err.print(f"{entry['email']} has the {role} role already: nothing changed")
    else:
        or_fail(
            lambda: audit.append(
                who=cli_principal(),
                action="identity-granted",
                what={"email": entry["email"], "role": role, "was": entry["was"]},
                result="ok",
            )
        )
        was = f" (was {entry['was']})" if entry["was"] else ""
        err.print(f"{entry['email']} has the {role} role{was}")
    emit({"status": "success", "email": entry["email"], "role": role, "was": entry["was"]})


@identities.command("list")
@click.pass_obj
def identities_list(settings: Settings) -> None:
    """Every identity with a role, and when it was granted or revoked."""
    book, _ = _book_and_audit(settings)
    people = or_fail(book.identities)
    for p in people:
        state = f"revoked {p['revoked_at']}" if p["revoked_at"] else f"since {p['granted_at']}"
        err.print(f"  {p['email']:<40} {p['role']:<8} {state}")
    emit({"status": "success", "identities": people})


@identities.command("revoke")
@click.argument("email")
@click.pass_obj
def identities_revoke(settings: Settings, email: str) -> None:
    """Take EMAIL's role away: their next request through the app is refused (403) and audited."""
    book, audit = _book_and_audit(settings)
    entry = or_fail(lambda: book.revoke_identity(email))
    or_fail(
        lambda: audit.append(
            who=cli_principal(), action="identity-revoked", what={"email": entry["email"]}, result="ok"
        )
    )
    err.print(f"{entry['email']}'s role is revoked")
    emit({"status": "success", "email": entry["email"], "revoked_at": entry["revoked_at"]})


@click.group()
def audit() -> None:
    """The audit trail: every download, lookup, upload, promotion, rollback and key change."""


@audit.command("verify")
@click.pass_obj
def audit_verify(settings: Settings) -> None:
    """Walk the chain: exit 1 naming the first changed or missing record."""
    _, log = _book_and_audit(settings)
    verdict = or_fail(log.verify)
    if not verdict.ok:
        fail(
            verdict.problem or "the audit trail is broken",
            broken_record=verdict.broken_seq,
            records=verdict.records,
        )
    err.print(f"the audit trail is whole: {verdict.records:,} records, each following the one before")
    emit({"status": "success", "records": verdict.records})


@audit.command("show")
@click.option("--who", default=None, help="Only this principal's records.")
@click.option("--action", default=None, help="Only this action (upload, download, customer-lookup, ...).")
@click.option("--customer", default=None, help="Only records about this customer id (matched by pseudonym).")
@click.option("--since", default=None, help="Only records at or after this ISO time (UTC).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Newest first.")
@click.pass_obj
def audit_show(
    settings: Settings,
    who: str | None,
    action: str | None,
    customer: str | None,
    since: str | None,
    limit: int,
) -> None:
    """The records, newest first, filtered."""
    from remarketing.personal_data import pseudonyms

    _, log = _book_and_audit(settings)
    try:
        after = datetime.fromisoformat(since) if since else None
    except ValueError:
        raise click.BadParameter(
            f"{since!r} is not an ISO time (e.g. 2026-12-01T09:00)", param_hint="--since"
        ) from None
    if after is not None and after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    hashed = pseudonyms(settings).of(customer) if customer else None
    records = or_fail(lambda: log.show(who=who, action=action, customer=hashed, since=after, limit=limit))
    for r in records:
        err.print(f"  {r['seq']:>6} {r['at']} {r['who']:<24} {r['action']:<22} {r['result']}")
    emit({"status": "success", "records": records})
