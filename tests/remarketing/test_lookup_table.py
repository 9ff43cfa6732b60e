"""The lookup table's store is chosen once, from the settings: PostgreSQL where a host is given, the SQLite
file locally, and in the cloud without a database an error that says so (never a file no one else reads)."""

import pandas as pd
import pytest

from remarketing.customer_lookup import CustomerLookup, LookupWriter
from remarketing.customer_lookup_postgres import PostgresCustomerLookup, PostgresLookupWriter
from remarketing.errors import Unavailable
from remarketing.lookup_table import customer_lookup, run_writer
from remarketing.settings import Settings
from remarketing.step import StepSettings

RUN = dict(dataset="bank", run_id="scoring-1", scored_at="2024-01-01T06:00:00+00:00", model_version="7")


def chunk():
    return pd.DataFrame(
        {"customer_id": ["C1"], "probability": [0.5], "rank": [1], "group": ["targeted"], "reason_1": ["age"]}
    )


def test_locally_the_sqlite_file_in_the_state_folder(tmp_path):
    settings = Settings(state_dir=tmp_path, lookup_runs_kept=3)
    writer = run_writer(settings, **RUN)
    assert isinstance(writer, LookupWriter)
    assert (writer.path, writer.keep_runs) == (settings.lookup_path, 3)
    with writer:
        writer.add(chunk())
    with customer_lookup(settings) as lookup:
        assert isinstance(lookup, CustomerLookup)
        assert lookup.latest("bank", "C1")["detail"] == {"reason_1": "age"}


def test_a_database_host_chooses_postgresql_in_either_mode(lookup_database):
    d = lookup_database
    for mode in ("local", "gcp"):
        settings = Settings(
            mode=mode,
            tracking_uri="https://mlflow.example.run.app",
            lookup_db_host=d.host,
            lookup_db_port=d.port,
            lookup_db_name=d.dbname,
            lookup_db_user=d.user,
            lookup_db_password=d.password,
            lookup_db_sslmode="disable",
            lookup_runs_kept=4,
        )
        writer = run_writer(settings, **{**RUN, "run_id": f"scoring-{mode}"})
        assert isinstance(writer, PostgresLookupWriter)
        assert (writer.database, writer.keep_runs) == (d, 4)
        with writer:
            writer.add(chunk())
        lookup = customer_lookup(settings)
        assert isinstance(lookup, PostgresCustomerLookup) and lookup.database == d
        assert lookup.latest("bank", "C1")["run_id"] == f"scoring-{mode}"
        lookup.close()


def test_publish_reads_the_choice_through_its_declared_settings(lookup_database):
    """The publish step sees only the settings remarketing.flow declares for it: all of the choice's."""
    settings = Settings(lookup_db_host=lookup_database.host, lookup_db_port=lookup_database.port)
    from remarketing import flow

    declared = flow.PIPELINES["scoring"].step("publish").settings
    writer = run_writer(StepSettings(settings, "publish", declared), **RUN)
    assert isinstance(writer, PostgresLookupWriter) and writer.database.port == lookup_database.port


def test_in_the_cloud_without_a_database_the_table_is_unavailable_not_a_local_file(tmp_path):
    settings = Settings(mode="gcp", tracking_uri="https://mlflow.example.run.app", state_dir=tmp_path)
    with pytest.raises(Unavailable, match="customer lookup table at Cloud SQL is unavailable .no database"):
        customer_lookup(settings)
    with pytest.raises(Unavailable, match="REMARKETING_LOOKUP_DB_HOST"):
        run_writer(settings, **RUN)
    assert not settings.lookup_path.exists()


def test_the_password_never_travels_to_a_pipeline_and_secret_names_must_be_names():
    settings = Settings(
        lookup_db_host="10.0.0.3",
        lookup_db_password="s3cret",
        customer_id_key="k3y",
        customer_id_key_secret="projects/p/secrets/rmk-pseudonym-key",
        lookup_db_password_secret="projects/p/secrets/rmk-lookup-db/versions/3",
    )
    passed = settings.for_pipeline()
    assert "lookup_db_password" not in passed and "customer_id_key" not in passed
    assert "s3cret" not in str(passed) and "k3y" not in str(passed)
    assert passed["lookup_db_host"] == "10.0.0.3"
    assert passed["customer_id_key_secret"] == "projects/p/secrets/rmk-pseudonym-key"
    with pytest.raises(ValueError, match="REMARKETING_CUSTOMER_ID_KEY_SECRET 'k3y' is not a Secret Manager"):
        Settings(customer_id_key_secret="k3y")
