"""A stand-in for Identity-Aware Proxy where it cannot run: a real ES256 key pair that signs real JWTs as
IAP does, and gstatic's key file serving its public key (faked at the transport google-auth calls, which
records what it was asked for). Nothing of the verification itself is faked."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

AUDIENCE = "/projects/123456789012/locations/europe-west1/services/remarketing-app"


class Signer:
    """An ES256 key pair standing in for one of IAP's, and the JWTs it signs."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, email: str | None = "Ana.Analyst@Bank.example", *, kid: str | None = None, **claims):
        now = int(time.time())
        payload = {
            "iss": "https://cloud.google.com/iap",
            "aud": AUDIENCE,
            "sub": "accounts.google.com:1234567890",
            "iat": now,
            "exp": now + 600,
            **({"email": email} if email else {}),
            **claims,
        }
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        signer = crypt.ES256Signer.from_string(pem, kid or self.kid)
        return jwt.encode(signer, payload).decode()


@dataclass
class KeyFile:
    """gstatic's answer: the public keys in PEM by key id (what https://www.gstatic.com/iap/verify/public_key
    serves), with a Cache-Control header."""

    keys: dict[str, str]
    status: int = 200
    cache_control: str = "public, max-age=1800"
    asked: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, url: str, method: str = "GET", **kwargs):
        self.asked.append((url, method))
        body = json.dumps(self.keys).encode()
        return _Response(self.status, {"cache-control": self.cache_control}, body)


@dataclass
class _Response:
    status: int
    headers: dict
    data: bytes
