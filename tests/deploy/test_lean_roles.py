"""Each light role (the API, the app, the functions) runs without the heavy libraries its extra leaves out:
what its entry point imports, checked in a fresh interpreter (so an accidental import of scikit-learn or
TensorFlow through the core would not fit the image it ships in)."""

import json
import subprocess
import sys

import pytest

HEAVY = (
    "sklearn",
    "tensorflow",
    "keras",
    "shap",
    "kserve",
    "scipy",
    "matplotlib",
    "kfp",
    "streamlit",
    "mlflow.server",
)
ENTRY = {
    # the API answers a request (its routes, views and the upload checks are imported on the way)
    "api": "from frontend.api.main import create_app; from fastapi.testclient import TestClient; "
    "TestClient(create_app()).get('/healthz')",
    # the app's shared pieces (every page imports them; Streamlit itself is the app's own dependency)
    "app": "import frontend.app.client, frontend.app.ui, remarketing.contacts, remarketing.datasets, "
    "remarketing.scoring",
    # a function handling an event up to launch() (the KFP client is imported only when a run is submitted)
    "functions": "import cloud_functions.storage_event, remarketing.launch, pipelines.launchers",
}
ALLOWED = {"api": set(), "app": {"streamlit"}, "functions": set()}


@pytest.mark.parametrize("role", list(ENTRY))
def test_a_light_role_imports_no_heavy_library(role):
    code = f"{ENTRY[role]}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = {
        h for h in HEAVY if h not in ALLOWED[role] and any(m == h or m.startswith(h + ".") for m in loaded)
    }
    assert not heavy, f"the {role} imports {sorted(heavy)}, which its extra does not install"
