import pytest

from remarketing import datasets
from remarketing.datasets import available, load_spec
from remarketing.errors import PreconditionFailed, SpecError
from remarketing.settings import Settings
from remarketing.storage import Storage, join, split_gs


def test_local_defaults_derive_the_emulator_and_mlflow_addresses(monkeypatch):
    monkeypatch.setenv("REMARKETING_MLFLOW_PORT", "6001")
    s = Settings()
    assert s.mode == "local" and s.tracking_uri == "http://127.0.0.1:6001"
    assert s.storage_emulator_host == f"http://127.0.0.1:{s.emulator_port}"
    assert Settings.model_validate(s.for_pipeline()) == s  # a pipeline rebuilds the same settings


def test_settings_round_trip_through_the_environment(monkeypatch):
    s = Settings(mlflow_port=6123, budget=300)
    for key, value in s.to_env().items():
        monkeypatch.setenv(key, value)
    assert Settings() == s


def test_gcp_mode_requires_a_tracking_uri():
    with pytest.raises(ValueError, match="REMARKETING_TRACKING_URI is required"):
        Settings(mode="gcp")


def test_budget_absolute_wins_over_share():
    assert Settings(budget_share=0.1).budget_for(1000) == 100
    assert Settings(budget=50).budget_for(1000) == 50 and Settings(budget=5000).budget_for(1000) == 1000


def test_addresses():
    assert split_gs("gs://b/a/c.csv") == ("b", "a/c.csv")
    assert join("gs://b/", "/x/", "y") == "gs://b/x/y"


def test_local_paths_support_create_only_and_compare_and_swap(tmp_path):
    storage = Storage(Settings(state_dir=tmp_path))
    path = str(tmp_path / "a" / "r.json")
    generation = storage.write_text(path, "1", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        storage.write_text(path, "2", if_generation_match=0)
    storage.write_text(path, "3", if_generation_match=generation)
    assert storage.read_text(path) == "3"
    assert list(storage.list(str(tmp_path))) == [path]


def test_specs_never_use_the_leak_and_keep_roles_apart():
    assert available() == ["bank-marketing", "thera-bank"]
    bank = load_spec("bank-marketing")
    assert "duration" in bank.never_use and "duration" not in bank.features
    assert bank.id_column not in bank.features and bank.target.column not in bank.features


def test_unknown_spec_is_named():
    with pytest.raises(SpecError, match="unknown dataset 'nope'; known: bank-marketing, thera-bank"):
        load_spec("nope")


def test_a_spec_using_its_id_as_a_feature_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ntarget: {column: y, positive: '1', negative: '0'}\nid_column: id\n"
        "split: {train: 0.6, validation: 0.2, test: 0.2}\nfeatures: {id: {type: integer}}\n"
        "personal_data: {id: {kind: direct identifier, purpose: a key},\n"
        "                y: {kind: neither, purpose: the outcome}}\n"
    )
    with pytest.raises(SpecError, match="never features"):
        load_spec(str(path))


def test_every_column_of_a_spec_is_classed_as_personal_data_or_not(tmp_path):
    bank = load_spec("bank-marketing")
    assert bank.direct_identifiers == [bank.id_column]
    assert {bank.personal_data[c].kind for c in ("age", "job")} == {"quasi-identifier"}
    text = (datasets.SPEC_DIR / "bank-marketing.yaml").read_text()
    unclassed = text.replace("  age: {kind: quasi-identifier, purpose: a feature}\n", "")
    path = tmp_path / "unclassed.yaml"
    path.write_text(unclassed)
    with pytest.raises(SpecError, match=r"personal_data does not class \['age'\]"):
        load_spec(str(path))
    path.write_text(text + "  nickname: {kind: direct identifier, purpose: none}\n")
    with pytest.raises(SpecError, match=r"classes columns the spec does not name: \['nickname'\]"):
        load_spec(str(path))
    path.write_text(text.replace("y: {kind: neither", "y: {kind: secret"))
    with pytest.raises(SpecError, match="direct identifier"):
        load_spec(str(path))


@pytest.mark.parametrize(
    "audience",
    [
        "/projects/123456789012/locations/europe-west1/services/rmk-app",  # IAP on the Cloud Run service
        "/projects/123456789012/global/backendServices/987654321",  # IAP on a load balancer
    ],
)
def test_an_iap_audience_is_one_of_the_two_forms_iap_signs_for(audience):
    assert Settings(iap_audience=audience).iap_audience == audience


@pytest.mark.parametrize("audience", ["https://rmk-app.a.run.app", "/projects/my-project/global/x", "app"])
def test_anything_else_is_refused_as_an_iap_audience_at_once(audience):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="is not an IAP audience"):
        Settings(iap_audience=audience)
