"""Password hashing (argon2 via pwdlib), API-key digests (keyed SHA-256) and JWT bearer tokens.

In app.common, not app.auth: the request plumbing (app.deps) resolves every caller with
these, and auth's routers use that plumbing like every router, so they sit below both.

Passwords are low-entropy, so they get a slow memory-hard hash, verified only at log-in. API
keys are 256-bit random secrets, so a keyed digest (HMAC-SHA-256 with the service's secret
key) is as strong and costs microseconds: keys are looked up by digest on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from pwdlib import PasswordHash

from app.common.clock import utc_now

_hasher = PasswordHash.recommended()
ALGORITHM = "HS256"
API_KEY_PREFIX_LEN = 12
# A valid hash to verify against when the user does not exist, so timing does not leak it.
_DUMMY_HASH = _hasher.hash("zhuqi-dummy-password")


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret: str, hashed: str | None) -> bool:
    if hashed is None:
        _hasher.verify(secret, _DUMMY_HASH)
        return False
    return _hasher.verify(secret, hashed)


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int
    expires_at: float = 0.0  # Unix seconds


def create_access_token(
    user_id: int, *, token_version: int, secret_key: str, minutes: int
) -> tuple[str, datetime]:
    """``ver`` is the user's token version: bumping it (new password, deactivation) kills
    every token issued before."""
    expires = utc_now() + timedelta(minutes=minutes)
    payload = {
        "sub": str(user_id),
        "ver": token_version,
        "exp": expires,
        "iat": utc_now(),
        "typ": "access",
    }
    return jwt.encode(payload, secret_key, algorithm=ALGORITHM), expires


def decode_access_token(token: str, *, secret_key: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token, or ``None``."""
    try:
        payload = jwt.decode(
            token, secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "ver"]}
        )
        if payload.get("typ") != "access":
            return None
        return TokenClaims(
            user_id=int(payload["sub"]),
            token_version=int(payload["ver"]),
            expires_at=float(payload["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def api_key_digest(key: str, *, secret_key: str) -> str:
    """HMAC-SHA-256 of the full key: what is stored and looked up (hex, 64 characters)."""
    return hmac.new(secret_key.encode(), key.encode(), hashlib.sha256).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_api_key() -> tuple[str, str]:
    """Return (full key shown once, lookup prefix). The key is ``zq_<prefix>_<secret>``."""
    prefix = secrets.token_hex(API_KEY_PREFIX_LEN // 2)
    return f"zq_{prefix}_{secrets.token_urlsafe(32)}", prefix


def split_api_key(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "zq" or len(parts[1]) != API_KEY_PREFIX_LEN:
        return None
    return parts[1]
