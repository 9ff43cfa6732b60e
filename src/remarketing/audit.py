"""The audit trail: who did what, to which customer, with what result, in the order it happened.

Every event (an upload, a download, a score looked up, a promotion, a key revoked, a refused request)
becomes one JSON record under ``audit/records/<seq>.json`` in the artifacts bucket. ``customer`` is an
already-hashed customer id: this module never sees a raw one.

Why hash-chained and create-only: a record, once written, is never overwritten (a create-only write
fails if the object exists), and each record carries the hash of the one before it. So an edited record
(its hash no longer matches its content), a deleted one (a gap in the sequence, or the log ends before
the head says it does) or one slipped in out of order (its ``prev`` is not its predecessor's hash) is
named by ``verify``. What the chain cannot show from inside the bucket is a wholesale rewrite of a record
and every later one plus the head. In the cloud the writers may only create and read records (IAM:
objectCreator cannot replace an object); a retention lock would close the gap for anyone else, but it
needs a bucket of the trail's own (not built).

``audit/head.json`` holds the newest record's seq and hash so an append finds the end without listing;
it is a hint, moved forward by compare-and-swap, and may lag (a writer that died between its record and
the head): the records are the truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remarketing.errors import Conflict, ParameterError, PreconditionFailed
from remarketing.storage import ObjectNotFound, Storage, join

log = logging.getLogger(__name__)
ZERO_HASH = "0" * 64  # the ``prev`` of record 1
HEAD_EVERY = 50  # records a busy shipper writes between two moves of the head
MAX_ATTEMPTS = 1000  # record slots an append tries (each lost one is a record someone else wrote)
_RECORD_NAME = re.compile(r"^(\d{12})\.json$")


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: everything but ``hash``, keys sorted, no spaces."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """sha256 (hex) of the record's canonical JSON; it includes ``prev``, so the records link."""
    return hashlib.sha256(canonical(record)).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found. ``records``: the records found sound, in order, before the first problem
    (all of them when ``ok``); ``broken_seq``: the first record that is not (None when ``ok``, or when
    only the head is damaged); ``problem``: what is wrong with it, in plain words."""

    ok: bool
    records: int
    broken_seq: int | None = None
    problem: str | None = None


class AuditLog:
    """The append-only, hash-chained audit trail under ``<artifacts_root>/audit/``."""

    def __init__(self, storage: Storage, artifacts_root: str) -> None:
        self.storage = storage
        self.root = join(artifacts_root, "audit")
        self._records_prefix = join(self.root, "records")
        self._head_uri = join(self.root, "head.json")
        self._lock = threading.Lock()  # threads of one process take turns instead of losing races
        self._known: tuple[int, str] | None = None  # the last record this writer wrote or followed
        self._head_written: tuple[int, int] | None = None  # (seq, generation) of this writer's last head

    # --- addresses and reads -------------------------------------------------------------------
    def _record_uri(self, seq: int) -> str:
        return join(self._records_prefix, f"{seq:012d}.json")

    def _listed(self) -> list[tuple[int, str]]:
        """(seq, uri) of every record object, in seq order; other names under the prefix are ignored."""
        found = []
        for uri in self.storage.list(self._records_prefix + "/"):
            m = _RECORD_NAME.match(uri.rsplit("/", 1)[-1])
            if m:
                found.append((int(m.group(1)), uri))
        return sorted(found)

    def _read_record(self, seq: int, uri: str) -> dict[str, Any]:
        """The record at ``uri``; a ``Conflict`` if it is not a record (run ``verify`` for the details)."""
        try:
            record = json.loads(self.storage.read_bytes(uri))
        except (ValueError, UnicodeDecodeError) as exc:
            raise Conflict(
                f"audit record {seq} is damaged (not valid JSON); `verify` names the problem"
            ) from exc
        if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
            raise Conflict(f"audit record {seq} is damaged (not a record); `verify` names the problem")
        return record

    def _read_head(self) -> tuple[tuple[int, str] | None, int]:
        """((seq, hash) or None when absent or damaged, generation: 0 when absent)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                data, generation = self.storage.read_with_generation(self._head_uri)
            except ObjectNotFound:
                return None, 0
            except PreconditionFailed:  # GCS: replaced between the lookup and the download
                continue
            return _parse_head(data), generation
        raise PreconditionFailed(f"{self._head_uri} kept changing while it was read; try again")

    def _end(self) -> tuple[int, str]:
        """Where the log ends, as far as is known: the head, or (no head, or a damaged one) the highest
        record listed; (0, zeros) for an empty log."""
        head, _ = self._read_head()
        if head is not None:
            return head
        listed = self._listed()
        if not listed:
            return 0, ZERO_HASH
        seq, uri = listed[-1]
        return seq, str(self._read_record(seq, uri)["hash"])

    # --- writing -------------------------------------------------------------------------------
    def append(
        self,
        *,
        who: str,
        action: str,
        result: str,
        what: dict[str, Any] | None = None,
        customer: str | None = None,
        role: str | None = None,
        at: str | None = None,
        move_head: bool = True,
    ) -> dict[str, Any]:
        """Record one event at the end of the log; returns the record as written (with seq and hash).
        ``at``: when it happened (default: now); ``move_head=False`` leaves the head to :meth:`move_head`.

        ``customer`` must already be hashed. Safe against other writers (threads, processes, machines):
        a slot someone else took is skipped, following their record's hash."""
        problems = [
            f"{name} must be a non-empty string"
            for name, value in (("who", who), ("action", action), ("result", result))
            if not isinstance(value, str) or not value.strip()
        ]
        if problems:
            raise ParameterError(problems)
        # What is stored is what JSON keeps (tuples become lists, keys strings): hash that, return that.
        details = json.loads(json.dumps(what or {}, default=str))
        at = at or datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            seq, prev = self._known or self._end()
            for _ in range(MAX_ATTEMPTS):
                seq += 1
                record: dict[str, Any] = {
                    "seq": seq,
                    "at": at,
                    "who": who,
                    "role": role,
                    "action": action,
                    "what": details,
                    "customer": customer,
                    "result": result,
                    "prev": prev,
                }
                record["hash"] = record_hash(record)
                uri = self._record_uri(seq)
                try:
                    self.storage.write_text(
                        uri,
                        json.dumps(record, indent=2, sort_keys=True),
                        if_generation_match=0,
                        content_type="application/json",
                    )
                except PreconditionFailed:
                    # Another writer took this slot (or the head lags behind it): follow its record.
                    try:
                        prev = str(self._read_record(seq, uri)["hash"])
                    except ObjectNotFound:
                        seq -= 1  # gone since (removed by hand?): try the slot again
                    continue
                self._known = (seq, record["hash"])
                if move_head:
                    self._advance_head(seq, record["hash"])
                return record
        raise PreconditionFailed(
            f"could not append to the audit log at {self.root}: other writers took {MAX_ATTEMPTS} slots in "
            "a row; nothing was written, try again"
        )

    def _advance_head(self, seq: int, digest: str) -> None:
        """Move the head to ``seq`` by compare-and-swap, only ever forward. Best effort: the record is
        written already, and a lagging head only costs the next append a skipped slot. The head this
        writer wrote last is tried first, without reading it."""
        written_seq, generation = self._head_written or (0, None)
        if seq <= written_seq:
            return
        for _ in range(MAX_ATTEMPTS):
            if generation is None:
                head, generation = self._read_head()
                if head is not None and head[0] >= seq:
                    return
            try:
                written = self.storage.write_text(
                    self._head_uri,
                    json.dumps({"seq": seq, "hash": digest}),
                    if_generation_match=generation,
                    content_type="application/json",
                )
            except PreconditionFailed:
                generation = None  # the head moved: look again
                continue
            self._head_written = (seq, written)
            return

    def move_head(self) -> None:
        """The head to the last record this writer wrote (after appends with ``move_head=False``)."""
        if self._known is not None:
            self._advance_head(*self._known)

    # --- reading -------------------------------------------------------------------------------
    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in seq order (a ``Conflict`` at a damaged one)."""
        for seq, uri in self._listed():
            yield self._read_record(seq, uri)

    def show(
        self,
        *,
        who: str | None = None,
        action: str | None = None,
        customer: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The records matching every filter given (exact ``who``, ``action``, ``customer``;
        ``at >= since``, a naive ``since`` read as UTC), newest first, at most ``limit`` of them."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        shown: list[dict[str, Any]] = []
        if limit is not None and limit <= 0:
            return shown
        for seq, uri in reversed(self._listed()):
            record = self._read_record(seq, uri)
            if who is not None and record.get("who") != who:
                continue
            if action is not None and record.get("action") != action:
                continue
            if customer is not None and record.get("customer") != customer:
                continue
            if since is not None and datetime.fromisoformat(str(record.get("at"))) < since:
                continue
            shown.append(record)
            if limit is not None and len(shown) >= limit:
                break
        return shown

    # --- checking ------------------------------------------------------------------------------
    def verify(self) -> Verdict:
        """Walk the records in seq order and name the first one that is changed, missing or out of the
        chain. The head is read before the listing: every record up to it was written before it was."""
        try:
            data, _ = self.storage.read_with_generation(self._head_uri)
        except ObjectNotFound:
            data = None
        head = _parse_head(data) if data is not None else None
        head_damaged = data is not None and head is None

        expected, prev, good = 1, ZERO_HASH, 0
        hashes: dict[int, str] = {}
        for seq, uri in self._listed():
            if seq != expected:
                there = (
                    f"records {expected - 1} and {seq} are there"
                    if expected > 1
                    else f"the log starts at record {seq}"
                )
                return Verdict(False, good, expected, f"record {expected} is missing ({there})")
            try:
                raw = self.storage.read_bytes(uri)
            except ObjectNotFound:
                return Verdict(False, good, seq, f"record {seq} is missing (it was listed, then gone)")
            problem = _problem(seq, raw, prev)
            if problem:
                return Verdict(False, good, seq, problem)
            record = json.loads(raw)
            prev = hashes[seq] = record["hash"]
            expected, good = seq + 1, good + 1

        if head is not None:
            head_seq, head_hash = head
            if head_seq >= expected:
                return Verdict(
                    False,
                    good,
                    expected,
                    f"record {expected} is missing (the head says the log reaches {head_seq})",
                )
            if head_seq >= 1 and hashes.get(head_seq) != head_hash:
                return Verdict(
                    False,
                    good,
                    head_seq,
                    f"record {head_seq} was changed (its hash is not the one the head recorded for it)",
                )
        if head_damaged:
            return Verdict(False, good, None, f"the head ({self._head_uri}) was changed (it is not a head)")
        return Verdict(True, good)


def _parse_head(data: bytes) -> tuple[int, str] | None:
    try:
        head = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(head, dict):
        return None
    seq, digest = head.get("seq"), head.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or not isinstance(digest, str):
        return None
    return seq, digest


def _problem(seq: int, raw: bytes, prev: str) -> str | None:
    """What is wrong with record ``seq`` (stored as ``raw``) following a record whose hash is ``prev``."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return f"record {seq} was changed (it is not valid JSON)"
    if not isinstance(record, dict):
        return f"record {seq} was changed (it is not a JSON object)"
    if record.get("seq") != seq or isinstance(record.get("seq"), bool):
        return f"record {seq} was changed (its seq field says {record.get('seq')!r})"
    if record.get("hash") != record_hash(record):
        return f"record {seq} was changed (its hash does not match its content)"
    if record.get("prev") != prev:
        if seq == 1:
            return "record 1 does not start the chain (its prev hash is not 64 zeros)"
        return f"record {seq} does not follow record {seq - 1} (its prev hash is not record {seq - 1}'s hash)"
    return None


class AuditShipper:
    """Appends a long-lived process's records (the API's) in the order they were queued, in a thread of
    its own, so that a request does not wait for the bucket's writes (a lookup answers in milliseconds, a
    record's write takes longer). What it costs: records queued and not yet written when the process is
    killed are lost (on a clean stop they are written first: :meth:`settle`). While writes fail, the
    shipper says so (:attr:`failing`) and keeps the records to try again: the API then answers 503 rather
    than release data it cannot record."""

    def __init__(self, log: AuditLog, *, limit: int = 10_000, retry_seconds: float = 1.0) -> None:
        self.log = log
        self.retry_seconds = retry_seconds
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=limit)  # full: appenders wait
        self.failing: str | None = None
        self._shipped = 0
        threading.Thread(target=self._ship_forever, name="audit-shipper", daemon=True).start()

    def trouble(self) -> str | None:
        """Why the trail cannot take more now, in words (None when it can): the API then answers 503."""
        if self.failing:
            return f"cannot be written ({self.failing})"
        if self._queue.qsize() >= self._queue.maxsize * 0.9:
            return f"is behind ({self._queue.qsize():,} records not written yet)"
        return None

    def append_soon(self, **fields: Any) -> None:
        """Queue one record (the fields of :meth:`AuditLog.append`), timed now."""
        fields.setdefault("at", datetime.now(UTC).isoformat(timespec="seconds"))
        self._queue.put(fields)

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued record is written (True), or ``timeout`` passes (False)."""
        drained = self._queue.all_tasks_done  # the condition Queue.join waits on, with a timeout
        with drained:
            return drained.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def _ship_forever(self) -> None:
        while True:
            fields = self._queue.get()
            while True:
                try:
                    self.log.append(**fields, move_head=False)
                except Exception as exc:  # storage down, refusing: said, and tried again
                    self.failing = str(exc)
                    log.error("audit trail: a record is not written yet (%s); trying again", exc)
                    time.sleep(self.retry_seconds)
                    continue
                self.failing = None
                break
            self._shipped += 1
            # the head once the queue is drained (one write, not one per record), and every HEAD_EVERY
            # records while it is not, so another writer (the CLI, a pipeline) finds the end near it
            if self._queue.empty() or self._shipped % HEAD_EVERY == 0:
                try:
                    self.log.move_head()
                except Exception:  # a hint: moved with the next batch
                    log.warning("audit trail: the head was not moved", exc_info=True)
            self._queue.task_done()
