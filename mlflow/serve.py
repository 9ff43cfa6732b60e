"""Start the MLflow tracking server of a cloud deployment (the entry point of mlflow/Dockerfile).

Builds the PostgreSQL backend-store URI from its parts, so that the password (injected by Cloud Run from
Secret Manager) is URL-encoded and never appears on a command line: it reaches MLflow through the
MLFLOW_BACKEND_STORE_URI environment variable, which `mlflow server` reads. Everything else is an
explicit argument. This folder is deliberately not a package (an mlflow/__init__.py would shadow the
library).

Environment:
  MLFLOW_DB_HOST, MLFLOW_DB_PORT (5432), MLFLOW_DB_NAME, MLFLOW_DB_USER, MLFLOW_DB_PASSWORD,
  MLFLOW_DB_SSLMODE (require), MLFLOW_ARTIFACTS_DESTINATION (gs://<artifacts-bucket>/mlflow),
  MLFLOW_ALLOWED_HOSTS (comma-separated, fnmatch patterns), MLFLOW_WORKERS (2), PORT (8080).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from urllib.parse import quote, urlencode

REQUIRED = (
    "MLFLOW_DB_HOST",
    "MLFLOW_DB_NAME",
    "MLFLOW_DB_USER",
    "MLFLOW_DB_PASSWORD",
    "MLFLOW_ARTIFACTS_DESTINATION",
)


def backend_store_uri(env: Mapping[str, str]) -> str:
    """postgresql+psycopg2://user:password@host:port/db?sslmode=..., every part URL-encoded."""
    user = quote(env["MLFLOW_DB_USER"], safe="")
    password = quote(env["MLFLOW_DB_PASSWORD"], safe="")
    host = env["MLFLOW_DB_HOST"]
    port = env.get("MLFLOW_DB_PORT", "5432")
    name = quote(env["MLFLOW_DB_NAME"], safe="")
    query = urlencode({"sslmode": env.get("MLFLOW_DB_SSLMODE", "require")})
    return f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{name}?{query}"


def server_args(env: Mapping[str, str]) -> list[str]:
    """The `mlflow server` command line (no secret in it)."""
    return [
        "mlflow",
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        env.get("PORT", "8080"),
        "--workers",
        env.get("MLFLOW_WORKERS", "2"),
        "--serve-artifacts",
        "--artifacts-destination",
        env["MLFLOW_ARTIFACTS_DESTINATION"],
        "--allowed-hosts",
        env.get("MLFLOW_ALLOWED_HOSTS", "*.run.app,localhost,localhost:*"),
    ]


def main() -> None:
    env = dict(os.environ)
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        sys.stderr.write(f"mlflow/serve.py: missing environment variables: {', '.join(missing)}\n")
        raise SystemExit(2)
    env["MLFLOW_BACKEND_STORE_URI"] = backend_store_uri(env)
    # Background job execution spawns extra processes the server does not need here.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    args = server_args(env)
    os.execvpe(args[0], args, env)


if __name__ == "__main__":
    main()
