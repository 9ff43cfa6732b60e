"""Compile every pipeline to the IR YAML a real Kubeflow Pipelines accepts."""

from __future__ import annotations

from pathlib import Path

from kfp import compiler

from pipelines.definitions import build
from remarketing.flow import PIPELINES


def compile_one(name: str, output_dir: Path, image: str) -> Path:
    if name not in PIPELINES:
        raise ValueError(f"no pipeline {name!r}; known: {', '.join(PIPELINES)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.yaml"
    compiler.Compiler().compile(build(name, image), str(path))
    return path


def compile_all(output_dir: Path, image: str) -> list[Path]:
    return [compile_one(name, output_dir, image) for name in PIPELINES]
