"""Single-customer online scoring latency on loopback: our KServe predictor (``python -m serving``) against
MLServer's scikit-learn runtime serving the same model, both over the V2 protocol, one worker each.

    .venv/bin/python benchmarks/online_serving.py [--rates 20 100] [--seconds 10] [--mlserver-venv DIR]

MLServer lives in its own virtual environment (default ``.venv-mlserver``; it needs fastapi<0.116):

    python3.11 -m venv .venv-mlserver
    .venv-mlserver/bin/pip install -r benchmarks/mlserver/requirements.txt

The model is the logreg family (the usual champion) fitted on a time-ordered sample of bank-full. MLServer
gets it as a scikit-learn ``Pipeline`` of the bundle's own preprocessor and estimator saved with joblib,
with the Platt calibration folded into the logistic coefficients, so both servers return the same
calibrated probability (checked, ``parity_max_abs_diff``). Load is open-loop at a fixed rate (a request
is sent every 1/rate s whether or not earlier ones have returned) and latency is measured from the
scheduled send time, so a server that falls behind shows it in its tail. One customer per request,
cycling through 200 later customers; warm-up requests are not counted. The load generator runs on the
same 2 cores as the server, as the scoring pipeline's client would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import example, free_port, record  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

NAME = "remarketing"
CUSTOMERS = 200
WARMUP = 50


# --- the model, for both servers ---------------------------------------------------------------------
def build_model(data: Path, workdir: Path) -> tuple[Path, Path, list[dict]]:
    """A logreg bundle (ours) and a joblib sklearn Pipeline with the same probabilities (MLServer's)."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from remarketing import bundle
    from remarketing.datasets import load_spec
    from remarketing.models import fit_family, platt
    from remarketing.validation import Purpose, validate

    spec = load_spec("bank-marketing")
    lines = data.read_bytes().splitlines(keepends=True)
    sample = b"".join([lines[0], *lines[1::5]])  # every 5th row, in time order (about 9,000)
    frame = validate(sample, spec, Purpose.TRAINING).frame
    train, recent = (
        frame.iloc[: int(len(frame) * 0.6)],
        frame.iloc[int(len(frame) * 0.6) : int(len(frame) * 0.8)],
    )
    model = fit_family("logreg", spec, train, seed=1, background_rows=100)
    model.calibration = platt(model.margin(recent), recent["y"].to_numpy())
    bundle_dir = bundle.save(model, workdir / "bundle", {"note": "benchmarks/online_serving"})

    a, b = model.calibration
    folded = LogisticRegression()
    folded.classes_ = model.estimator.classes_
    folded.coef_ = model.estimator.coef_ * a
    folded.intercept_ = model.estimator.intercept_ * a + b
    folded.n_features_in_ = model.estimator.n_features_in_
    pipeline = Pipeline([("preprocess", model.preprocessor), ("estimator", folded)])
    ml_dir = workdir / "mlserver-model"
    ml_dir.mkdir()
    joblib.dump(pipeline, ml_dir / "model.joblib")
    (ml_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": NAME,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
        )
    )
    later = frame.iloc[int(len(frame) * 0.8) :]
    rows = json.loads(later.head(CUSTOMERS)[spec.feature_names].to_json(orient="records"))
    return bundle_dir, ml_dir, rows


def v2_body(rows: list[dict], numeric: set[str], *, mlserver: bool) -> dict:
    inputs = []
    for column in rows[0]:
        tensor = {
            "name": column,
            "shape": [len(rows)],
            "datatype": "INT64" if column in numeric else "BYTES",
            "data": [r[column] for r in rows],
        }
        if mlserver and column not in numeric:
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    body: dict = {"inputs": inputs}
    if mlserver:  # MLServer: decode the inputs as a DataFrame, answer predict_proba
        body["parameters"] = {"content_type": "pd"}
        body["outputs"] = [{"name": "predict_proba"}]
    return body


def probabilities(response: dict) -> np.ndarray:
    data = np.asarray(response["outputs"][0]["data"], dtype="float64")
    shape = response["outputs"][0]["shape"]
    data = data.reshape(shape)
    return data[:, 1] if data.ndim == 2 else data  # MLServer's predict_proba is [n, 2]


# --- servers ------------------------------------------------------------------------------------------
def start_ours(bundle_dir: Path, port: int, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "serving", "--model-uri", str(bundle_dir), "--model-name", NAME]
    command += ["--http-port", str(port), "--host", "127.0.0.1", "--workers", "1"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def start_mlserver(venv: Path, model_dir: Path, port: int, log) -> subprocess.Popen:
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,  # inference in the server process, like ours (1 would add a worker process)
    }
    (model_dir / "settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT / "src")}
    command = [str(venv / "bin" / "mlserver"), "start", str(model_dir)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=model_dir)


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {seconds} s")


# --- load ---------------------------------------------------------------------------------------------
async def open_loop(url: str, bodies: list[dict], rate: float, count: int) -> dict:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        for i in range(WARMUP):
            (await client.post(url, json=bodies[i % len(bodies)])).raise_for_status()
        latencies: list[float] = []
        errors = 0

        async def one(i: int, scheduled: float) -> None:
            nonlocal errors
            try:
                response = await client.post(url, json=bodies[i % len(bodies)])
                if response.status_code != 200:
                    errors += 1
                    return
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000
    return {
        "rate_per_s": rate,
        "requests": count,
        "errors": errors,
        "achieved_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p90_ms": round(float(np.percentile(ms, 90)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
    }


def measure(name: str, process, ready_url: str, infer_url: str, bodies, batch, rates, seconds) -> dict:
    try:
        ready_s = wait_ready(ready_url, process)
        batch_response = httpx.post(infer_url, json=batch, timeout=30)
        batch_response.raise_for_status()
        runs = [asyncio.run(open_loop(infer_url, bodies, r, int(r * seconds))) for r in rates]
        return {"ready_seconds": round(ready_s, 1), "runs": runs, "_p": probabilities(batch_response.json())}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 100.0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate (bounded)")
    parser.add_argument("--mlserver-venv", type=Path, default=ROOT / ".venv-mlserver")
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    rates = [min(r, 500.0) for r in args.rates]

    from remarketing.datasets import load_spec

    numeric = set(load_spec("bank-marketing").numeric)
    with tempfile.TemporaryDirectory(prefix="online-serving-") as tmp:
        workdir = Path(tmp)
        bundle_dir, ml_dir, rows = build_model(args.data, workdir)
        ours_bodies = [v2_body([r], numeric, mlserver=False) for r in rows]
        ml_bodies = [v2_body([r], numeric, mlserver=True) for r in rows]
        results: dict = {}

        port = free_port()
        with open(workdir / "ours.log", "wb") as log:
            base = f"http://127.0.0.1:{port}"
            results["kserve"] = measure(
                "kserve",
                start_ours(bundle_dir, port, log),
                f"{base}/v2/models/{NAME}/ready",
                f"{base}/v2/models/{NAME}/infer",
                ours_bodies,
                v2_body(rows, numeric, mlserver=False),
                rates,
                seconds,
            )

        if (args.mlserver_venv / "bin" / "mlserver").exists():
            port = free_port()
            with open(workdir / "mlserver.log", "wb") as log:
                base = f"http://127.0.0.1:{port}"
                try:
                    results["mlserver"] = measure(
                        "mlserver",
                        start_mlserver(args.mlserver_venv, ml_dir, port, log),
                        f"{base}/v2/models/{NAME}/ready",
                        f"{base}/v2/models/{NAME}/infer",
                        ml_bodies,
                        v2_body(rows, numeric, mlserver=True),
                        rates,
                        seconds,
                    )
                except Exception as exc:  # report, with the log, instead of losing our own figures
                    log.flush()
                    tail = (workdir / "mlserver.log").read_text(errors="replace")[-1500:]
                    results["mlserver"] = {"error": f"{type(exc).__name__}: {exc}", "log_tail": tail}
        else:
            results["mlserver"] = {"error": f"no MLServer at {args.mlserver_venv} (see the docstring)"}

        ours_p = results["kserve"].pop("_p")
        ml_p = results["mlserver"].pop("_p", None)
        figures = {
            "model": "logreg on every 5th row of bank-full (time split), one customer per request",
            "protocol": "V2 REST /v2/models/<name>/infer, JSON, one input per column",
            "workers": 1,
            "load": f"open loop, {seconds:g} s per rate, {WARMUP} warm-up requests, httpx.AsyncClient "
            "keep-alive on loopback",
            "versions": versions(args.mlserver_venv),
            "parity_max_abs_diff": None if ml_p is None else float(np.max(np.abs(ours_p - ml_p))),
            **results,
        }
        record("online_serving", figures)


def versions(venv: Path) -> dict:
    from importlib import metadata

    out = {"kserve": metadata.version("kserve"), "scikit-learn": metadata.version("scikit-learn")}
    pip = venv / "bin" / "pip"
    if pip.exists():
        frozen = subprocess.run([str(pip), "freeze"], capture_output=True, text=True).stdout.splitlines()
        for line in frozen:
            name, _, version = line.partition("==")
            if name.lower() in ("mlserver", "mlserver-sklearn", "fastapi"):
                out[f"mlserver-venv {name.lower()}"] = version
    return out


if __name__ == "__main__":
    main()
