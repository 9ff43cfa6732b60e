"""IAP's signed assertion, verified by google-auth for real: the test makes an ES256 key pair, signs real
JWTs with it, and serves its public key where IAP's would be fetched from. Only gstatic (the key file's
address) is faked, at the transport google-auth calls, and what it was asked for is asserted."""

from __future__ import annotations

import time

import pytest

from cloud_auth.iap import CERTS_URL, CachedKeys, IapVerifier, InvalidAssertion
from remarketing.errors import Unavailable
from tests.cloud_auth.fake_iap import AUDIENCE, KeyFile, Signer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def iap():
    return Signer("key-1")


def verifier_for(key_file: KeyFile, clock: Clock | None = None) -> IapVerifier:
    return IapVerifier(AUDIENCE, keys=CachedKeys(key_file, clock or Clock()))


def test_an_assertion_iap_signed_for_the_app_names_the_person(iap):
    key_file = KeyFile({iap.kid: iap.public_pem()})
    verifier = verifier_for(key_file)
    user = verifier.verify(iap.sign())
    assert (user.email, user.subject) == ("ana.analyst@bank.example", "accounts.google.com:1234567890")
    assert not user.expired() and user.expired(now=time.time() + 700)
    verifier.verify(iap.sign("other@bank.example"))
    assert key_file.asked == [(CERTS_URL, "GET")]  # fetched once, then kept


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s, o: s.sign(iat=int(time.time()) - 1200, exp=int(time.time()) - 600), "it expired"),
        (lambda s, o: s.sign(aud="/projects/1/global/backendServices/2"), "signed for another application"),
        (lambda s, o: o.sign(kid=s.kid), "its signature does not verify"),  # another key, the same id
        (lambda s, o: s.sign(kid="key-9"), "it names a key IAP does not publish"),
        (lambda s, o: s.sign(iss="https://accounts.google.com"), "issued by 'https://accounts.google.com'"),
        (lambda s, o: s.sign(email=None), "it names no email"),
        (lambda s, o: s.sign(iat=int(time.time()) + 600), "it is dated in the future"),
        (lambda s, o: "eyJhbGciOiJub25lIn0." + s.sign().split(".")[1] + ".", "signed with 'none', not ES256"),
        (lambda s, o: "not-a-jwt", "it is not a JWT signed by IAP"),
    ],
)
def test_what_iap_did_not_sign_for_this_app_now_is_refused_saying_why(iap, make, reason):
    verifier = verifier_for(KeyFile({iap.kid: iap.public_pem()}))
    with pytest.raises(InvalidAssertion, match=reason) as refused:
        verifier.verify(make(iap, Signer("other")))
    assert refused.value.expired == (reason == "it expired")


def test_the_keys_are_fetched_again_when_kept_too_long_or_when_iap_may_have_a_new_one(iap):
    clock = Clock()
    key_file = KeyFile({iap.kid: iap.public_pem()}, cache_control="max-age=120")
    verifier = verifier_for(key_file, clock)
    verifier.verify(iap.sign())
    clock.now += 119
    verifier.verify(iap.sign())
    assert len(key_file.asked) == 1
    clock.now += 2  # past max-age
    verifier.verify(iap.sign())
    assert len(key_file.asked) == 2
    # IAP starts signing with a key published after the last fetch: fetched again once, then it verifies
    rotated = Signer("key-2")
    key_file.keys[rotated.kid] = rotated.public_pem()
    clock.now += 61
    assert verifier.verify(rotated.sign()).email == "ana.analyst@bank.example"
    assert len(key_file.asked) == 3
    # an unknown key id within the minute does not fetch again (no fetch per forged token)
    with pytest.raises(InvalidAssertion, match="names a key IAP does not publish"):
        verifier.verify(iap.sign(kid="key-3"))
    assert len(key_file.asked) == 3


def test_keys_that_cannot_be_fetched_are_named_as_unavailable(iap):
    verifier = verifier_for(KeyFile({}, status=503))
    with pytest.raises(Unavailable, match=f"IAP's public keys at {CERTS_URL} is unavailable"):
        verifier.verify(iap.sign())
