"""API key material: generation and the keyed hash that is all the database ever holds."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "fo-"
# 32 random bytes: guessing is hopeless, and the hash needs no slow KDF.
KEY_RANDOM_BYTES = 32
SHOWN_PREFIX_CHARS = 10


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_hex(32)


def key_hash(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def shown_prefix(key: str) -> str:
    return key[:SHOWN_PREFIX_CHARS]
