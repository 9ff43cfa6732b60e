"""The storage emulator, persisted to disk, taught GCS's generation semantics.

gcp-storage-emulator ignores ``ifGenerationMatch`` (a create-only write would silently overwrite) and
serves the live content for any ``generation`` (a run would read a newer upload than its own). Its router
reads the module-level ``HANDLERS`` table on every request and serves one request at a time, so
wrapping the upload handler makes the check-and-write atomic. It also reads and rewrites a resumable
upload's whole file for every part it receives (quadratic in the object's size: a 2.3 GB scored file in
32 MB parts rewrote some 37 GB); here a part is appended. Run: ``python -m local_stack.emulator``.
"""

from __future__ import annotations

import argparse
import logging
from http import HTTPStatus
from pathlib import Path

from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.exceptions import BadRequest, NotFound
from gcp_storage_emulator.handlers import buckets, objects
from gcp_storage_emulator.storage import RESUMABLE_DIR, Storage

_original_insert = objects.insert
_original_download = objects.download


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
            response.json(
                {
                    "error": {
                        "code": 412,
                        "message": "At least one of the pre-conditions you specified did not hold.",
                        "errors": [{"reason": "conditionNotMet", "message": "Precondition Failed"}],
                    }
                }
            )
            return None
    return _original_insert(request, response, storage, *args, **kwargs)


def download_generation(request, response, storage, *args, **kwargs):
    """A download pinned to a generation that is no longer live is 404, as in GCS without versioning
    (the emulator would otherwise serve the newer content)."""
    wanted = request.query.get("generation")
    if wanted:
        try:
            live = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])[
                "generation"
            ]
        except NotFound:
            live = None
        if live is not None and str(live) != wanted[0]:
            response.status = HTTPStatus.NOT_FOUND
            response.json({"error": {"code": 404, "message": f"No such object generation: {wanted[0]}"}})
            return None
    return _original_download(request, response, storage, *args, **kwargs)


REPLACEMENTS = {_original_insert: insert_with_preconditions, _original_download: download_generation}


def _resumable_file(storage: Storage, upload_id: str) -> Path:
    return storage._store._disk_path(storage._object_path(RESUMABLE_DIR, storage.safe_id(upload_id)))


def add_to_resumable_upload(self, file_id, content, total_size=None, expected_start=None):
    """The emulator's method on disk, a part appended to the upload's file instead of the whole file read
    and written again; the whole object once it is complete, else None."""
    path = _resumable_file(self, file_id)
    size = path.stat().st_size if path.exists() else 0
    if expected_start is not None and expected_start != size:
        raise BadRequest(f"Invalid Content-Range start: expected {size}, got {expected_start}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as upload:
        upload.write(content or b"")
    size += len(content or b"")
    if total_size is None or size < total_size:
        return None
    return path.read_bytes()[:total_size]


def get_resumable_byte_count(self, file_id) -> int:
    path = _resumable_file(self, file_id)
    return path.stat().st_size if path.exists() else 0


def install() -> None:
    """Route uploads through the precondition check and downloads through the generation check, and
    append a resumable upload's parts (the server runs on disk: the appends need the upload's file)."""
    Storage.add_to_resumable_upload = add_to_resumable_upload
    Storage.get_resumable_byte_count = get_resumable_byte_count
    objects.insert = insert_with_preconditions  # used by the router's fallback for /b/.../o POSTs
    emulator_server.HANDLERS = tuple(
        (regex, {method: REPLACEMENTS.get(h, h) for method, h in handlers.items()})
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
