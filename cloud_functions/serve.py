"""Serve one Cloud Function locally as functions-framework does, plus ``GET /metrics`` (its counts).

``python -m cloud_functions.serve --target on_input_file --port 8091``: the function's own folder's
``main.py`` is loaded as its deployment would load it; the extra route is the only difference, and exists
only here (Cloud Run is not scraped: the cloud counts the same facts from the functions' logs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from functions_framework import create_app
from functions_framework._http import create_server
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import cloud_functions
from cloud_functions import metrics


def build_app(target: str):
    source = Path(cloud_functions.__file__).parent / target / "main.py"
    app = create_app(target, str(source), "cloudevent")
    metrics.declare(target, cloud_functions.FUNCTIONS[target].kind)
    app.add_url_rule(
        "/metrics", "metrics", lambda: (generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST})
    )
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cloud_functions.serve")
    parser.add_argument("--target", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    create_server(build_app(args.target), False).run(args.host, args.port)


if __name__ == "__main__":
    main()
