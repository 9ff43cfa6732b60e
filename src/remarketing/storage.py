"""Read and write by address: ``gs://bucket/path`` or a local path, through one small interface with a
backend per scheme.

``gs://`` goes through the real google-cloud-storage client; in local mode that client talks to the
storage emulator (``Settings.storage_emulator_host``) with anonymous credentials. No client is built at
import time.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remarketing.errors import NotFoundError, PreconditionFailed, StorageError, Unavailable

if TYPE_CHECKING:
    from google.cloud import storage as gcs

    from remarketing.settings import Settings


class ObjectNotFound(StorageError, NotFoundError):
    """No object at that address (or not at that generation): storage answered, the object is not there."""


READ_DEADLINE_SECONDS = 8.0  # a read that gets no answer is retried until this (the client default: 120)


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    generation: int
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


def split_gs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    if not uri.startswith("gs://"):
        raise StorageError(f"not a gs:// address: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    if not bucket:
        raise StorageError(f"no bucket in {uri!r}")
    return bucket, name


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local_generation(path: Path) -> int:
    """Every write replaces the file (a new inode), so inode and mtime together change on each write."""
    st = path.stat()
    return st.st_ino * 10**12 + st.st_mtime_ns % 10**12


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_local(path: Path, data: bytes, if_generation_match: int | None) -> int:
    """Local files with the same create-only / compare-and-swap semantics as GCS generations."""
    with _locked(path):
        exists = path.exists()
        if if_generation_match == 0 and exists:
            raise PreconditionFailed(f"{path} already exists")
        if if_generation_match and (not exists or _local_generation(path) != if_generation_match):
            raise PreconditionFailed(f"{path} changed since generation {if_generation_match}")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return _local_generation(path)


class LocalBackend:
    """Plain files, with GCS's create-only and compare-and-swap semantics (generations from the inode)."""

    def read_bytes(self, uri: str, generation: int | None) -> bytes:
        try:
            return Path(uri).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"{uri} does not exist") from exc

    def download_file(self, uri: str, target: Path, generation: int | None) -> None:
        try:
            shutil.copyfile(uri, target)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"{uri} does not exist") from exc

    def read_with_generation(self, uri: str) -> tuple[bytes, int]:
        path = Path(uri)
        with _locked(path):
            if not path.exists():
                raise ObjectNotFound(f"{uri} does not exist")
            return path.read_bytes(), _local_generation(path)

    def write_bytes(
        self,
        uri: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None,
        if_generation_match: int | None,
    ) -> int:
        return _write_local(Path(uri), data, if_generation_match)

    def upload_file(self, uri: str, source: Path, content_type: str) -> int:
        path = Path(uri)
        with _locked(path):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(path)
            return _local_generation(path)

    def stat(self, uri: str, generation: int | None) -> ObjectInfo:
        path = Path(uri)
        if not path.is_file():
            raise ObjectNotFound(f"{uri} does not exist")
        return ObjectInfo(uri=str(path), size=path.stat().st_size, generation=_local_generation(path))

    def delete(self, uri: str, if_generation_match: int | None) -> None:
        path = Path(uri)
        with _locked(path):
            if path.exists() and (
                if_generation_match is None or _local_generation(path) == if_generation_match
            ):
                path.unlink()

    def list(self, prefix_uri: str) -> Iterator[str]:
        root = Path(prefix_uri)
        if root.is_file():
            yield str(root)
        elif root.is_dir():
            yield from sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


UPLOAD_PART_BYTES = 32 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class GcsBackend:
    """``gs://`` through the real google-cloud-storage client (the emulator's, locally); no client is built
    before the first call."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def client(self) -> gcs.Client:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage as gcs

        host = self._settings.storage_emulator_host
        if host:
            return gcs.Client(
                project=self._settings.gcp_project,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": host},
            )
        return gcs.Client(project=self._settings.gcp_project)

    @property
    def address(self) -> str:
        return self._settings.storage_emulator_host or "https://storage.googleapis.com"

    @cached_property
    def retry(self) -> Any:
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(READ_DEADLINE_SECONDS)

    def _blob(self, uri: str, generation: int | None = None) -> Any:
        bucket, name = split_gs(uri)
        return self.client.bucket(bucket).blob(name, generation=generation)

    @contextmanager
    def _guard(self, uri: str, generation: int | None = None) -> Iterator[None]:
        """GCS's errors become the core's: not there (``ObjectNotFound``), a lost race
        (``PreconditionFailed``), storage not answering (``Unavailable``, never "not found")."""
        import requests
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import TransportError

        try:
            yield
        except gexc.NotFound as exc:
            at = f" at generation {generation}" if generation else ""
            raise ObjectNotFound(f"{uri} does not exist{at}") from exc
        except gexc.PreconditionFailed as exc:
            raise PreconditionFailed(f"{uri}: the generation precondition was not met") from exc
        except (
            requests.ConnectionError,
            requests.Timeout,
            TransportError,
            gexc.RetryError,
            gexc.ServerError,
        ) as exc:
            raise Unavailable(
                "storage",
                self.address,
                "start it (`remarketing up`) or check the network and credentials, then try again; "
                "nothing was lost",
                reason=type(exc).__name__,
            ) from exc

    def read_bytes(self, uri: str, generation: int | None) -> bytes:
        with self._guard(uri, generation):
            return bytes(self._blob(uri, generation).download_as_bytes(retry=self.retry))

    def download_file(self, uri: str, target: Path, generation: int | None) -> None:
        with self._guard(uri, generation):
            self._blob(uri, generation).download_to_filename(str(target), retry=self.retry)

    def read_with_generation(self, uri: str) -> tuple[bytes, int]:
        bucket, name = split_gs(uri)
        with self._guard(uri):
            blob = self.client.bucket(bucket).get_blob(name, retry=self.retry)
            if blob is None:
                raise ObjectNotFound(f"{uri} does not exist")
            generation = int(blob.generation)
            # a PreconditionFailed here: it changed between the lookup and the download
            data = blob.download_as_bytes(if_generation_match=generation, retry=self.retry)
        return bytes(data), generation

    def write_bytes(
        self,
        uri: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None,
        if_generation_match: int | None,
    ) -> int:
        blob = self._blob(uri)
        if metadata:
            blob.metadata = metadata
        # A write with a generation precondition is safe to retry; one without is not (as the client says).
        retry = self.retry if if_generation_match is not None else None
        with self._guard(uri):
            blob.upload_from_string(
                data, content_type=content_type, if_generation_match=if_generation_match, retry=retry
            )
        return int(blob.generation)

    def upload_file(self, uri: str, source: Path, content_type: str) -> int:
        blob = self._blob(uri)
        # Resumable past 8 MB, in parts of this size (the client's default part, 100 MB, is held in memory)
        blob.chunk_size = UPLOAD_PART_BYTES
        with self._guard(uri):  # not retried, as above
            blob.upload_from_filename(str(source), content_type=content_type, retry=None)
        return int(blob.generation)

    def stat(self, uri: str, generation: int | None) -> ObjectInfo:
        bucket, name = split_gs(uri)
        with self._guard(uri, generation):
            blob = self.client.bucket(bucket).get_blob(name, generation=generation, retry=self.retry)
        if blob is None:
            at = f" at generation {generation}" if generation else ""
            raise ObjectNotFound(f"{uri} does not exist{at} (replaced or removed)")
        return ObjectInfo(
            uri=uri,
            size=int(blob.size or 0),
            generation=int(blob.generation),
            metadata=dict(blob.metadata or {}),
            content_type=blob.content_type,
        )

    def delete(self, uri: str, if_generation_match: int | None) -> None:
        try:
            with self._guard(uri):
                self._blob(uri).delete(if_generation_match=if_generation_match, retry=self.retry)
        except (ObjectNotFound, PreconditionFailed):
            pass

    def list(self, prefix_uri: str) -> Iterator[str]:
        bucket, prefix = split_gs(prefix_uri)
        with self._guard(prefix_uri):
            names = [blob.name for blob in self.client.list_blobs(bucket, prefix=prefix, retry=self.retry)]
        for name in names:
            yield f"gs://{bucket}/{name}"

    def ensure_bucket(self, bucket: str) -> None:
        from google.api_core import exceptions as gexc

        try:
            with self._guard(f"gs://{bucket}"):
                self.client.create_bucket(bucket)
        except gexc.Conflict:
            pass


class Storage:
    """Address-based storage: ``gs://`` addresses go to GCS (or its emulator), anything else is a local
    path with the same generation semantics. The backend is chosen by the address, in one place."""

    def __init__(self, settings: Settings) -> None:
        self.gcs = GcsBackend(settings)
        self.local = LocalBackend()

    @property
    def client(self) -> gcs.Client:
        return self.gcs.client

    def _backend(self, uri: str) -> LocalBackend | GcsBackend:
        return self.gcs if uri.startswith("gs://") else self.local

    # --- objects -------------------------------------------------------------------------------
    def read_bytes(self, uri: str, *, generation: int | None = None) -> bytes:
        """The object's content; ``generation`` pins the version (a later upload does not change it)."""
        return self._backend(uri).read_bytes(uri, generation)

    def download_file(self, uri: str, target: Path, *, generation: int | None = None) -> tuple[str, int]:
        """Stream an object to a local file (memory stays flat); its sha256 and size."""
        target = Path(target)
        self._backend(uri).download_file(uri, target, generation)
        digest = hashlib.sha256()
        with open(target, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest(), target.stat().st_size

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def read_with_generation(self, uri: str) -> tuple[bytes, int]:
        """The content and the generation it belongs to (for compare-and-swap updates)."""
        return self._backend(uri).read_with_generation(uri)

    def write_bytes(
        self,
        uri: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> int:
        """Write ``data``; ``if_generation_match=0`` means create-only. Returns the new generation."""
        return self._backend(uri).write_bytes(uri, data, content_type, metadata, if_generation_match)

    def upload_file(self, uri: str, source: Path, *, content_type: str = "application/octet-stream") -> int:
        """Write the file at ``source`` to ``uri`` without holding it in memory. Returns the generation."""
        return self._backend(uri).upload_file(uri, Path(source), content_type)

    def write_text(self, uri: str, text: str, **kwargs: Any) -> int:
        kwargs.setdefault("content_type", "text/plain; charset=utf-8")
        return self.write_bytes(uri, text.encode("utf-8"), **kwargs)

    def stat(self, uri: str, *, generation: int | None = None) -> ObjectInfo:
        """Size, generation and metadata of the live object, or of ``generation`` (an error if replaced)."""
        return self._backend(uri).stat(uri, generation)

    def delete(self, uri: str, *, if_generation_match: int | None = None) -> None:
        """Remove one object (only that generation, when given); a missing one is not an error."""
        self._backend(uri).delete(uri, if_generation_match)

    def exists(self, uri: str) -> bool:
        try:
            self.stat(uri)
        except StorageError:
            return False
        return True

    def list(self, prefix_uri: str) -> Iterator[str]:
        """Every object address under a prefix (recursively)."""
        return self._backend(prefix_uri).list(prefix_uri)

    # --- folders (model bundles) ---------------------------------------------------------------
    def upload_dir(self, local_dir: Path, uri: str, *, create_only: bool = False) -> None:
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            rel = path.relative_to(local_dir).as_posix()
            self.write_bytes(
                join(uri, rel), path.read_bytes(), if_generation_match=0 if create_only else None
            )

    def download_dir(self, uri: str, local_dir: Path) -> Path:
        local_dir = Path(local_dir)
        prefix = uri.rstrip("/") + "/"
        found = False
        for obj in self.list(prefix):
            found = True
            target = local_dir / obj[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(obj))
        if not found:
            raise StorageError(f"{uri} holds no files")
        return local_dir

    def ensure_bucket(self, bucket: str) -> None:
        self.gcs.ensure_bucket(bucket)
