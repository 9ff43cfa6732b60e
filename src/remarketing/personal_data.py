"""Personal data: a customer's id outside the scored file and the lookup table is a keyed pseudonym.

The pseudonym is HMAC-SHA256 of the id under the deployment's customer-id key (generated once in the
state folder locally, ``REMARKETING_CUSTOMER_ID_KEY`` from Secret Manager in the cloud). Without the key,
a pseudonym cannot be turned back into an id, nor an id guessed from a list of likely ones (a plain hash
of a bank's sequential ids could be). It names the key it was made with (``k<key id>:``), so after a
rotation the records made under the old key are still recognisably that, not mistaken for other
customers.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cached_property

from remarketing.errors import RemarketingError
from remarketing.secrets import local_secret
from remarketing.settings import Settings


class Pseudonyms:
    def __init__(self, key: bytes) -> None:
        self.key = key

    @cached_property
    def key_id(self) -> str:
        """Eight hex digits that name the key (not the key: SHA-256 of it)."""
        return hashlib.sha256(self.key).hexdigest()[:8]

    def of(self, customer_id: str) -> str:
        digest = hmac.new(self.key, customer_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"k{self.key_id}:{digest.hexdigest()[:32]}"


def pseudonyms(settings: Settings) -> Pseudonyms:
    """The deployment's pseudonyms. In the cloud the key must be given: a key generated in a task's own
    folder would name the same customer differently in every run."""
    if settings.mode != "local" and not settings.customer_id_key:
        raise RemarketingError(
            "REMARKETING_CUSTOMER_ID_KEY is not set: in the cloud the pseudonym key comes from Secret "
            "Manager (the pseudonym-key secret), so that a customer has one pseudonym in every part and run"
        )
    return Pseudonyms(local_secret(settings, "customer-id.key", settings.customer_id_key).encode())
