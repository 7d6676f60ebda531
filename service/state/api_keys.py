"""API keys as the store keeps them: random, shown once, stored as a SHA-256 digest (keys are high-entropy, so no
slow KDF). Pure functions, here so the state layer imports nothing above it; the API checks keys with them too."""

import hashlib
import hmac
import secrets


def generate_api_key() -> str:
    return "gft-" + secrets.token_urlsafe(32)


def key_prefix(key: str) -> str:
    """What lists show of a key: "gft-" and 8 of its 43 random characters."""
    return key[:12]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def keys_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so timing never leaks how much of a key matched."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
