"""``python -m serving``'s command line: KServe's parser extended, loopback and no gRPC by default."""

from __future__ import annotations

import pytest

from serving.__main__ import build_parser
from serving.model import RemarketingModel


def test_defaults_are_loopback_without_grpc(monkeypatch):
    monkeypatch.delenv("STORAGE_URI", raising=False)
    args = build_parser().parse_args(["--model-uri", "/tmp/bundle", "--http-port", "9001"])
    assert (args.model_uri, args.http_port, args.host) == ("/tmp/bundle", 9001, "127.0.0.1")
    assert args.enable_grpc is False and args.model_name is None and args.workers == 1


def test_kserve_options_and_underscore_spellings_still_work():
    args = build_parser().parse_args(
        ["--model_uri", "gs://b/m/1/", "--http_port", "9002", "--model_name", "x", "--enable_grpc", "true"]
    )
    assert (args.model_uri, args.http_port, args.model_name, args.enable_grpc) == (
        "gs://b/m/1/",
        9002,
        "x",
        True,
    )


def test_model_uri_defaults_to_kserves_storage_uri(monkeypatch):
    monkeypatch.setenv("STORAGE_URI", "/mnt/models")
    assert build_parser().parse_args([]).model_uri == "/mnt/models"


def test_a_folder_without_a_bundle_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        RemarketingModel("m", str(tmp_path)).load()
