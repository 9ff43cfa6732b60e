"""Who may do what: named principals, each with one role, and the keys that prove who they are.

Roles are ordered, each including the ones before it:

- ``viewer``: runs, models, experiments, the figures and plots (nothing that names a customer);
- ``analyst``: also uploads, outcomes, the contact lists, explanations and the customer lookup;
- ``admin``: also experiments started and stopped, retraining by hand (promotion and rollback are the CLI's).

Keys are shown once, when created, and stored only as their SHA-256 (a key is 256 random bits, so a slow
password hash would buy nothing) in ``access/principals.json`` in the artifacts bucket, updated by
compare-and-swap. A revoked key stays in the book, marked, so an attempt with it is named as revoked.

The deployment's own key (``REMARKETING_API_KEY``, or the one generated in the state folder) is the
principal ``operator`` with the admin role: the app and the CLI on the operator's machine use it.
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


class AccessBook:
    """The principals and their hashed keys, in the artifacts bucket."""

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

    def _update(self, change: Any) -> dict[str, Any]:
        """Apply ``change`` to the book and write it back unless someone else wrote first (then again)."""
        for _ in range(20):
            book, generation = self._read()
            result = change(book["principals"])
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

    def listed(self) -> list[dict[str, Any]]:
        """Every principal (no key hashes), the operator first."""
        book, _ = self._read()
        rows = [{"name": OPERATOR, "role": "admin", "created_at": None, "revoked_at": None}]
        for name, entry in sorted(book["principals"].items()):
            rows.append({"name": name, **{k: v for k, v in entry.items() if k != "key_sha256"}})
        return rows


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
