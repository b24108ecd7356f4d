"""Personal data protection: AES-256-GCM field encryption at rest and the keyed pseudonym.

Field values are stored as `v1:<key-id>:<base64(nonce|ciphertext)>`; the key id lets old rows stay
readable after rotation (new key first in config, old ones in `old_field_keys`)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class FieldCipher:
    def __init__(self, current_b64: str, old_b64: list[str] = ()):
        keys = [base64.b64decode(k) for k in (current_b64, *old_b64)]
        self._current = keys[0]
        self._by_id = {_key_id(k): AESGCM(k) for k in keys}

    def encrypt(self, plain: str | None) -> str | None:
        if plain is None:
            return None
        nonce = os.urandom(12)
        ct = AESGCM(self._current).encrypt(nonce, plain.encode(), None)
        return f"v1:{_key_id(self._current)}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, stored: str | None) -> str | None:
        if stored is None:
            return None
        _, kid, blob = stored.split(":", 2)
        raw = base64.b64decode(blob)
        return self._by_id[kid].decrypt(raw[:12], raw[12:], None).decode()


def pseudonym(key_b64: str, id_number: str) -> str:
    """Keyed hash of an ID number: equal for the same person on every node, useless without the key."""
    return hmac.new(base64.b64decode(key_b64), id_number.strip().upper().encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
