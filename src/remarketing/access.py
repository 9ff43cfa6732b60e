"""Who may do what: named principals, each with one role, and the keys that prove who they are.

Roles are ordered, each including the ones before it:

- ``viewer``: runs, models, experiments, the figures and plots (nothing that names a customer);
- ``analyst``: also uploads, outcomes, the contact lists, explanations and the customer lookup;
- ``admin``: also experiments started and stopped, retraining by hand (promotion and rollback are the CLI's).

Keys are shown once, when created, and stored only as their SHA-256 (a key is 256 random bits, so a slow
password hash would buy nothing) in ``access/principals.json`` in the artifacts bucket, updated by
compare-and-swap. A revoked key stays in the book, marked, so an attempt with it is named as revoked.

The deployment's own key (``REMARKETING_API_KEY``, or the one generated in the state folder) is the
principal ``operator`` with the admin role: the CLI on the operator's machine uses it, and the app where
there is no Identity-Aware Proxy (locally).

People who sign in through IAP (the app in the cloud) hold no key: their Google identity (the email IAP's
signed assertion names, verified by the adapter: ``cloud_auth.iap``) is bound to a role in the same book
(``identities``), granted, changed and revoked with ``remarketing identities``. An identity with no role is
refused (403), as is one whose role was revoked; a revoked identity may be granted a role again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from remarketing.errors import Conflict, NotFoundError, ParameterError, PreconditionFailed
from remarketing.storage import ObjectNotFound, Storage, join

Role = Literal["viewer", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "analyst", "admin")
OPERATOR = "operator"
NAME = re.compile(r"[a-z][a-z0-9._-]{0,62}")
KEY_PREFIX = "rmk_"
# An identity as IAP's assertion names it (lower-cased): a Google account's or a service account's email.
EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+'-]{0,63}@[a-z0-9-]+(\.[a-z0-9-]+)+")


def allows(role: str, needed: Role) -> bool:
    """Whether ``role`` includes ``needed`` (admin includes analyst includes viewer)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)  # type: ignore[arg-type]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    revoked: bool = False


def identity(email: str) -> str:
    """``email`` as the book keys it (lower case), or :class:`ParameterError` naming what is wrong."""
    given = email.strip().lower()
    if ":" in given:  # an IAM member (user:, group:, domain:) is not what IAP's assertion names
        raise ParameterError(
            [f"{email!r}: give the person's email alone (IAP's assertion names a person, never a group)"]
        )
    if not EMAIL.fullmatch(given) or len(given) > 254:
        raise ParameterError([f"{email!r} is not an email (the account a person signs in to IAP with)"])
    return given


class AccessBook:
    """The principals and their hashed keys, and the identities bound to roles, in the artifacts bucket."""

    def __init__(self, storage: Storage, artifacts_root: str, operator_key: str) -> None:
        self.storage = storage
        self.uri = join(artifacts_root, "access", "principals.json")
        self._operator_hash = key_hash(operator_key)

    def _read(self) -> tuple[dict[str, Any], int]:
        try:
            data, generation = self.storage.read_with_generation(self.uri)
        except ObjectNotFound:  # none created yet (an unreachable store raises Unavailable, not this)
            return {"principals": {}}, 0
        return json.loads(data), generation

    def _update(self, change: Any, section: str = "principals") -> dict[str, Any]:
        """Apply ``change`` to a section of the book and write it back unless someone else wrote first (then
        again)."""
        for _ in range(20):
            book, generation = self._read()
            result = change(book.setdefault(section, {}))
            try:
                self.storage.write_text(
                    self.uri,
                    json.dumps(book, indent=2, sort_keys=True),
                    if_generation_match=generation,
                    content_type="application/json",
                )
            except PreconditionFailed:
                continue
            return result
        raise Conflict("the access book kept changing while it was being updated: try again")

    def authenticate(self, key: str) -> Principal | None:
        """The principal ``key`` belongs to (revoked ones too, marked); None for a key nobody holds."""
        digest = key_hash(key)
        if hmac.compare_digest(digest, self._operator_hash):
            return Principal(OPERATOR, "admin")
        book, _ = self._read()
        for name, entry in book["principals"].items():
            if hmac.compare_digest(digest, entry["key_sha256"]):
                return Principal(name, entry["role"], revoked=entry.get("revoked_at") is not None)
        return None

    def create(self, name: str, role: str) -> str:
        """A new principal with ``role``; its key, returned once (only its hash is kept)."""
        problems = []
        if not NAME.fullmatch(name) or name == OPERATOR:
            problems.append(
                f"name {name!r}: lower-case letters, digits and . _ -, starting with a letter "
                f"(at most 63), and not {OPERATOR!r}"
            )
        if role not in ROLES:
            problems.append(f"role {role!r}: one of {', '.join(ROLES)}")
        if problems:
            raise ParameterError(problems)
        key = KEY_PREFIX + secrets.token_urlsafe(32)

        def add(principals: dict[str, Any]) -> None:
            if name in principals:
                state = "revoked" if principals[name].get("revoked_at") else "active"
                raise Conflict(f"a principal named {name!r} exists ({state}): pick another name")
            principals[name] = {
                "role": role,
                "key_sha256": key_hash(key),
                "created_at": _now(),
                "revoked_at": None,
            }

        self._update(add)
        return key

    def revoke(self, name: str) -> dict[str, Any]:
        if name == OPERATOR:
            raise Conflict(
                "the operator's key is the deployment's own (REMARKETING_API_KEY, or secrets/api-key in the "
                "state folder): it is not revoked but replaced, and everything using it given the new one"
            )

        def mark(principals: dict[str, Any]) -> dict[str, Any]:
            if name not in principals:
                raise NotFoundError(f"no principal named {name!r}: `remarketing keys list` shows them")
            principals[name]["revoked_at"] = principals[name].get("revoked_at") or _now()
            return {"name": name, **principals[name]}

        return self._update(mark)

    def identify(self, email: str) -> Principal | None:
        """The principal a verified identity is (its role; revoked ones too, marked); None for one with no
        role here."""
        book, _ = self._read()
        entry = book.get("identities", {}).get(email.strip().lower())
        if entry is None:
            return None
        return Principal(email.strip().lower(), entry["role"], revoked=entry.get("revoked_at") is not None)

    def grant(self, email: str, role: str) -> dict[str, Any]:
        """Bind ``email`` to ``role``: a new identity, a changed role, or a revoked one let in again. The
        entry, with the role it had (``was``: None when it had none, or it was revoked)."""
        problems = []
        try:
            name = identity(email)
        except ParameterError as exc:
            problems += exc.problems
        if role not in ROLES:
            problems.append(f"role {role!r}: one of {', '.join(ROLES)}")
        if problems:
            raise ParameterError(problems)

        def bind(identities: dict[str, Any]) -> dict[str, Any]:
            before = identities.get(name) or {}
            was = None if before.get("revoked_at") else before.get("role")
            if was != role:
                identities[name] = {"role": role, "granted_at": _now(), "revoked_at": None}
            return {"email": name, "was": was, **identities[name]}

        return self._update(bind, "identities")

    def revoke_identity(self, email: str) -> dict[str, Any]:
        """Take ``email``'s role away: its next request is refused (403). Kept in the book, marked."""
        name = email.strip().lower()

        def mark(identities: dict[str, Any]) -> dict[str, Any]:
            if name not in identities:
                raise NotFoundError(
                    f"no identity {name!r} has a role: `remarketing identities list` shows them"
                )
            identities[name]["revoked_at"] = identities[name].get("revoked_at") or _now()
            return {"email": name, **identities[name]}

        return self._update(mark, "identities")

    def identities(self) -> list[dict[str, Any]]:
        """Every identity bound to a role (revoked ones too), by email."""
        book, _ = self._read()
        return [{"email": e, **entry} for e, entry in sorted(book.get("identities", {}).items())]

    def listed(self) -> list[dict[str, Any]]:
        """Every principal (no key hashes), the operator first."""
        book, _ = self._read()
        rows = [{"name": OPERATOR, "role": "admin", "created_at": None, "revoked_at": None}]
        for name, entry in sorted(book["principals"].items()):
            rows.append({"name": name, **{k: v for k, v in entry.items() if k != "key_sha256"}})
        return rows


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
