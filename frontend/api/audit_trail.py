"""Which requests the audit trail records (``remarketing.audit``), declared once, and the record of one.

A request is audited when its route is in :data:`AUDITED` (what touches customers' data or changes who
serves), and every refused request (401, 403) whatever its route. The record is queued as the answer
leaves and written in order by the API's shipper (``remarketing.audit.AuditShipper``). While the trail
cannot be written (or is far behind), every route that needs a key is answered 503 naming it, before
its handler runs: nothing is done or released that could not be recorded.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from remarketing.audit import AuditShipper
from remarketing.personal_data import Pseudonyms

AUDITED: dict[tuple[str, str], str] = {
    ("POST", "/uploads"): "upload",
    ("POST", "/runs/{run_id}/outcomes"): "outcomes-upload",
    ("GET", "/download"): "download",
    ("GET", "/customers/{customer_id}"): "customer-lookup",
    ("GET", "/runs/{run_id}/explanations"): "customer-explanation",
    ("GET", "/runs/{run_id}/predictions"): "contact-list-view",
    ("POST", "/experiments"): "experiment-start",
    ("POST", "/experiments/stop"): "experiment-stop",
    ("POST", "/retraining"): "retraining",
}
REFUSED = {401: "refused: not authenticated", 403: "refused: role"}
PUBLIC = {"/download", "/healthz", "/metrics", "/docs", "/openapi.json", "/redoc"}
# The parameters written as they are (what anyone sends is not written at will): the API's own names.
# The customer's id is written only as its pseudonym; the link's signature never.
KEPT = {"run_id", "dataset", "limit", "contacted_only", "history", "dry_run", "kind", "status", "uri"}
KEPT |= {"generation", "expires", "version", "name"}


def action_of(request: Request, status: int) -> str | None:
    """The audited action of a request that was answered ``status``, or None (not audited)."""
    route = request.scope.get("route")
    action = getattr(request.state, "audit_action", None)  # a route that audits an answer of its own
    action = action or AUDITED.get((request.method, getattr(route, "path", "")))
    if action is None and status in REFUSED:
        return f"request {request.method} {getattr(route, 'path', 'unmatched')}"
    return action


def append(audit: AuditShipper, pseudonyms: Pseudonyms, request: Request, action: str, status: int) -> None:
    params: dict[str, Any] = {**request.query_params, **request.path_params}
    customer = params.get("customer_id")
    what = {k: str(v)[:300] for k, v in params.items() if k in KEPT}
    what.update(getattr(request.state, "audit", {}))  # what the route adds (an upload's run id)
    what["client"] = request.client.host if request.client else None
    principal = getattr(request.state, "principal", None)
    anonymous = "signed link" if action == "download" else "anonymous"
    refused = "refused: signature" if action == "download" else REFUSED.get(status)
    audit.append_soon(
        who=principal.name if principal else anonymous,
        role=(principal.role or None) if principal else None,
        action=action,
        what=what,
        customer=pseudonyms.of(str(customer)) if customer else None,
        result=f"{status} {refused}" if status in REFUSED and refused else str(status),
    )
