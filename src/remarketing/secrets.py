"""Local secrets (the API key, the URL signing key): from settings, or generated once in the state
folder with mode 0600. In the cloud they come from Secret Manager through the same settings."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from remarketing.settings import Settings


def local_secret(settings: Settings, name: str, configured: str = "") -> str:
    """``configured`` when set; otherwise ``<state>/secrets/<name>``, created on first use."""
    if configured:
        return configured
    path = Path(settings.state_dir) / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)  # atomic and create-only: the first writer wins, readers never see it empty
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def api_key(settings: Settings) -> str:
    return local_secret(settings, "api-key", settings.api_key)


def url_signing_key(settings: Settings) -> bytes:
    return local_secret(settings, "url-signing.key", settings.url_signing_key).encode()
