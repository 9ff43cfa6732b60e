"""Roles, the access book on local storage, and customer pseudonyms."""

from __future__ import annotations

import threading

import pytest

from remarketing.access import AccessBook, Principal, allows
from remarketing.errors import Conflict, NotFoundError, ParameterError
from remarketing.personal_data import Pseudonyms, pseudonyms
from remarketing.settings import Settings
from remarketing.storage import Storage


@pytest.fixture
def book(tmp_path) -> AccessBook:
    return AccessBook(Storage(Settings(state_dir=tmp_path)), str(tmp_path / "artifacts"), "the-operators-key")


def test_each_role_includes_the_ones_before_it():
    assert allows("admin", "analyst") and allows("analyst", "viewer") and allows("viewer", "viewer")
    assert not allows("viewer", "analyst") and not allows("analyst", "admin")
    assert not allows("scheduler", "viewer") and not allows("", "viewer")


def test_keys_authenticate_their_principal_until_revoked(book):
    assert book.authenticate("the-operators-key").name == "operator"
    key = book.create("ana", "analyst")
    assert (book.authenticate(key).name, book.authenticate(key).role) == ("ana", "analyst")
    assert book.authenticate(key + "x") is None
    book.revoke("ana")
    assert book.authenticate(key).revoked
    assert [p["name"] for p in book.listed()] == ["operator", "ana"]
    with pytest.raises(NotFoundError, match="no principal named 'bob'"):
        book.revoke("bob")
    with pytest.raises(Conflict, match="not revoked but replaced"):
        book.revoke("operator")


def test_an_identity_has_the_role_granted_to_it_until_revoked_and_may_be_let_in_again(book):
    assert book.identify("ana@bank.example") is None  # no role: the API refuses it (403)
    granted = book.grant(" Ana@Bank.example ", "viewer")
    assert (granted["email"], granted["role"], granted["was"]) == ("ana@bank.example", "viewer", None)
    assert book.identify("ANA@bank.example") == Principal("ana@bank.example", "viewer")
    assert book.grant("ana@bank.example", "analyst")["was"] == "viewer"
    assert book.identify("ana@bank.example").role == "analyst"
    book.revoke_identity("ana@bank.example")
    assert book.identify("ana@bank.example").revoked
    assert book.grant("ana@bank.example", "viewer")["was"] is None  # revoked: it had no role
    assert book.identify("ana@bank.example") == Principal("ana@bank.example", "viewer")
    assert [i["email"] for i in book.identities()] == ["ana@bank.example"]
    # identities and keys are apart: a key's name is no identity, an identity has no key
    book.create("ana", "admin")
    assert book.identify("ana") is None and [p["name"] for p in book.listed()] == ["operator", "ana"]
    with pytest.raises(NotFoundError, match="no identity 'bob@bank.example' has a role"):
        book.revoke_identity("bob@bank.example")


@pytest.mark.parametrize(
    ("email", "role", "problem"),
    [
        ("group:analysts@bank.example", "analyst", "give the person's email alone"),
        ("ana", "analyst", "'ana' is not an email"),
        ("ana@bank.example", "boss", "role 'boss': one of viewer, analyst, admin"),
    ],
)
def test_an_identity_is_an_email_and_a_role_one_of_three(book, email, role, problem):
    with pytest.raises(ParameterError) as bad:
        book.grant(email, role)
    assert any(problem in p for p in bad.value.problems)
    assert book.identities() == []


def test_keys_created_at_once_are_all_kept(book):
    made: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: made.append(book.create(f"p{i}", "viewer"))) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(book.authenticate(k).name for k in made) == [f"p{i}" for i in range(8)]


def test_a_pseudonym_is_keyed_stable_and_names_its_key(tmp_path):
    one, other = Pseudonyms(b"key one"), Pseudonyms(b"key two")
    assert one.of("C000001") == one.of("C000001") != one.of("C000002")
    assert one.of("C000001") != other.of("C000001")
    assert one.of("C000001").startswith(f"k{one.key_id}:") and "C000001" not in one.of("C000001")
    settings = Settings(state_dir=tmp_path)
    assert pseudonyms(settings).of("x") == pseudonyms(settings).of("x")  # the key is made once
    assert (tmp_path / "secrets" / "customer-id.key").stat().st_mode & 0o777 == 0o600
    assert pseudonyms(settings.model_copy(update={"customer_id_key": "set"})).key == b"set"


def test_in_the_cloud_the_pseudonym_key_must_be_given(tmp_path):
    from remarketing.errors import RemarketingError

    cloud = Settings(state_dir=tmp_path, mode="gcp", tracking_uri="https://mlflow.example")
    with pytest.raises(RemarketingError, match="REMARKETING_CUSTOMER_ID_KEY is not set"):
        pseudonyms(cloud)
    assert not (tmp_path / "secrets" / "customer-id.key").exists()
    assert pseudonyms(cloud.model_copy(update={"customer_id_key": "from secret manager"})).key_id
