"""``python -m serving --model-uri ADDRESS [--http-port 8080] [--model-name NAME] [--host 127.0.0.1]``

KServe's own options (``kserve.model_server.parser``: ``--workers``, ``--enable_grpc``, ``--grpc_port``,
...) are accepted too. ``--model-uri`` defaults to ``$STORAGE_URI``, which KServe's storage initializer
rewrites to ``/mnt/models`` once it has downloaded the bundle there. gRPC is off unless asked for.

KServe 0.21's REST server always listens on 0.0.0.0; :class:`BoundModelServer` binds the address given by
``--host`` instead (loopback by default; the image passes ``--host 0.0.0.0``).
"""

from __future__ import annotations

import argparse
import os

from kserve import ModelServer, model_server

from serving.dataplane import ColumnarDataPlane
from serving.model import RemarketingModel

DEFAULT_HOST = "127.0.0.1"


class BoundModelServer(ModelServer):
    """``kserve.ModelServer`` listening on ``host`` only.

    ``ModelServer.start`` builds its uvicorn-based REST server, then calls ``setup_event_loop`` before it
    serves: the host of the REST server's ``uvicorn.Config`` is set there (uvicorn reads it when it binds).
    tests/serving checks the listening address of a real process, so a KServe upgrade that changes this
    order fails a test instead of silently listening on every interface."""

    def __init__(self, *, host: str = DEFAULT_HOST, **kwargs) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.dataplane = ColumnarDataPlane(model_registry=self.registered_models)

    def setup_event_loop(self) -> None:
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
        if self._rest_multiprocess_server is not None:
            self._rest_multiprocess_server._rest_server.config.host = self.host
        super().setup_event_loop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve one Remarketing model bundle with KServe (V1 predict/explain, V2 infer).",
        parents=[model_server.parser],
    )
    parser.add_argument(
        "--model-uri",
        "--model_uri",
        dest="model_uri",
        default=os.environ.get("STORAGE_URI"),
        help="the bundle: gs://<artifacts>/model-output/<model>/<version>/ or a local folder "
        "(default: $STORAGE_URI)",
    )
    parser.add_argument("--http-port", dest="http_port", type=int, help="alias of --http_port")
    parser.add_argument(
        "--model-name", dest="model_name", help="the name in the URL paths (default: remarketing-<dataset>)"
    )
    parser.add_argument(
        "--model-version", "--model_version", dest="model_version", help="reported in V2 responses"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: loopback)")
    # The parent's defaults are shared action objects: set them here, once, for this program.
    parser.set_defaults(enable_grpc=False, model_name=None, http_port=8080)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model_uri:
        parser.error("--model-uri is required (or set STORAGE_URI)")
    model = RemarketingModel(args.model_name, args.model_uri, version=args.model_version)
    # Off only to measure what the metrics cost (benchmarks/observability.py).
    model.count_metrics = os.environ.get("REMARKETING_MODEL_METRICS", "1") != "0"
    model.load()
    server = BoundModelServer(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=args.enable_grpc,
    )
    server.start([model])


if __name__ == "__main__":
    main()
