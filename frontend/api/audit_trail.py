"""Which requests the audit trail records (``remarketing.audit``), declared once, and the record of one.

A request is audited when its route is in :data:`AUDITED` (what touches customers' data or changes who
serves), and every refused request (401, 403) whatever its route. The record is queued as the answer
leaves and written in order by the API's shipper (``remarketing.audit.AuditShipper``); while the trail
cannot be written, audited answers are withheld (503 naming it), except refusals, which release nothing.
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
# Parameters that are never written as they are: the customer's id (pseudonymised) and the link's parts.
WITHHELD = {"customer_id", "signature"}


def action_of(request: Request, status: int) -> str | None:
    route = request.scope.get("route")
    action = AUDITED.get((request.method, getattr(route, "path", "")))
    if action is None and status in REFUSED:
        return f"request {request.method} {getattr(route, 'path', request.url.path)}"
    return action


def append(audit: AuditShipper, pseudonyms: Pseudonyms, request: Request, action: str, status: int) -> None:
    params: dict[str, Any] = {**request.query_params, **request.path_params}
    customer = params.get("customer_id")
    what = {k: v for k, v in params.items() if k not in WITHHELD}
    what.update(getattr(request.state, "audit", {}))  # what the route adds (an upload's run id)
    principal = getattr(request.state, "principal", None)
    anonymous = "signed link" if action == "download" else "anonymous"
    audit.append_soon(
        who=principal.name if principal else anonymous,
        role=(principal.role or None) if principal else None,
        action=action,
        what=what,
        customer=pseudonyms.of(str(customer)) if customer else None,
        result=f"{status} {REFUSED[status]}" if status in REFUSED else str(status),
    )
