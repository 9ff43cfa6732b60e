"""The record of every change to who serves: promotions (by the training gate, by an experiment, by hand),
rollbacks and experiments started and ended, each with its evidence.

One JSON object per decision under ``decisions/<dataset>/`` in the artifacts bucket, written create-only
(a decision, once recorded, never changes); listed newest first.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from remarketing.audit import AuditLog
from remarketing.storage import Storage, join


def _root(artifacts_root: str, dataset: str) -> str:
    return join(artifacts_root, "decisions", dataset)


def record(
    storage: Storage,
    artifacts_root: str,
    dataset: str,
    *,
    action: str,
    version: str,
    by: str,
    evidence: dict[str, Any],
    previous: str | None = None,
) -> dict[str, Any]:
    at = datetime.now(UTC)
    entry = {
        "at": at.isoformat(timespec="seconds"),
        "dataset": dataset,
        # promoted | rolled-back | experiment-started | experiment-stopped | experiment-ended
        "action": action,
        "version": version,
        "previous": previous,
        "by": by,
        "evidence": evidence,
    }
    name = f"{at.strftime('%Y%m%dT%H%M%S%f')}-{action}-{uuid.uuid4().hex[:6]}.json"
    storage.write_text(
        join(_root(artifacts_root, dataset), name),
        json.dumps(entry, indent=2, default=str),
        if_generation_match=0,
        content_type="application/json",
    )
    # every change to who serves is in the audit trail too (who did it; the evidence stays here)
    AuditLog(storage, artifacts_root).append(
        who=by,
        action=action,
        what={"dataset": dataset, "version": version, "previous": previous, "decision": name},
        result="ok",
    )
    return entry


def listed(storage: Storage, artifacts_root: str, dataset: str, limit: int = 100) -> list[dict[str, Any]]:
    uris = sorted(storage.list(_root(artifacts_root, dataset) + "/"), reverse=True)[:limit]
    return [json.loads(storage.read_text(uri)) for uri in uris]
