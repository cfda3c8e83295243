"""API key material: generation and the keyed hash that is all the database ever holds."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "fo-"
# 32 random bytes: guessing is hopeless, and the hash needs no slow KDF.
KEY_RANDOM_BYTES = 32
# Listings show the prefix and this many random characters: enough to tell keys apart, not to guess one.
SHOWN_RANDOM_CHARS = 7


def new_key(prefix: str = KEY_PREFIX) -> str:
    """A secret to hand out once; ``prefix`` says what it opens (proxy keys, management tokens)."""
    return prefix + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def new_key_id(kind: str = "key") -> str:
    return f"{kind}_" + secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_hex(32)


def key_hash(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def shown_prefix(key: str, prefix: str = KEY_PREFIX) -> str:
    return key[: len(prefix) + SHOWN_RANDOM_CHARS]
