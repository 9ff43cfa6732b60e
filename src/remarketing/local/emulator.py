"""The storage emulator, persisted to disk, taught to honour ``ifGenerationMatch`` on uploads.

gcp-storage-emulator ignores preconditions, so a create-only write would silently overwrite. Its router
reads the module-level ``HANDLERS`` table on every request and serves one request at a time, so
wrapping the upload handler makes the check-and-write atomic. Run: ``python -m remarketing.local.emulator``.
"""

from __future__ import annotations

import argparse
import logging
from http import HTTPStatus

from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import buckets, objects

_original_insert = objects.insert


def _object_name(request) -> str | None:
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data
    if isinstance(data, dict):
        meta = data.get("meta") if "meta" in data else data
        if isinstance(meta, dict):
            return meta.get("name")
    return None


def insert_with_preconditions(request, response, storage, *args, **kwargs):
    """Answer 412 when ``ifGenerationMatch`` does not match the live object's generation (0: absent)."""
    wanted = request.query.get("ifGenerationMatch")
    if wanted:
        name = _object_name(request)
        try:
            current = int(storage.get_file_obj(request.params["bucket_name"], name)["generation"])
        except NotFound:
            current = 0
        if name is not None and int(wanted[0]) != current:
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json({"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold.",
                                     "errors": [{"reason": "conditionNotMet", "message": "Precondition Failed"}]}})
            return None
    return _original_insert(request, response, storage, *args, **kwargs)


def install() -> None:
    """Route every upload through the precondition check."""
    objects.insert = insert_with_preconditions  # used by the router's fallback for /b/.../o POSTs
    emulator_server.HANDLERS = tuple(
        (regex, {m: (insert_with_preconditions if h is _original_insert else h) for m, h in handlers.items()})
        for regex, handlers in emulator_server.HANDLERS
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9023)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--bucket", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    install()
    server = emulator_server.create_server(args.host, args.port, in_memory=False, data_dir=args.data_dir)
    for bucket in args.bucket:
        try:
            buckets.create_bucket(bucket, server._storage)
        except Exception:  # noqa: BLE001 - already there from an earlier start
            pass
    server.run()


if __name__ == "__main__":
    main()
