"""Password and API-key hashing (argon2 via pwdlib) and short-lived JWT bearer tokens (PyJWT)."""

from __future__ import annotations

import secrets
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


def create_access_token(user_id: int, *, secret_key: str, minutes: int) -> tuple[str, datetime]:
    expires = utc_now() + timedelta(minutes=minutes)
    payload = {"sub": str(user_id), "exp": expires, "iat": utc_now(), "typ": "access"}
    return jwt.encode(payload, secret_key, algorithm=ALGORITHM), expires


def decode_access_token(token: str, *, secret_key: str) -> int | None:
    """The user id of a valid, unexpired token, or ``None``."""
    try:
        payload = jwt.decode(
            token, secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        if payload.get("typ") != "access":
            return None
        return int(payload["sub"])
    except (jwt.PyJWTError, ValueError):
        return None


def new_api_key() -> tuple[str, str]:
    """Return (full key shown once, lookup prefix). The key is ``zq_<prefix>_<secret>``."""
    prefix = secrets.token_hex(API_KEY_PREFIX_LEN // 2)
    return f"zq_{prefix}_{secrets.token_urlsafe(32)}", prefix


def split_api_key(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "zq" or len(parts[1]) != API_KEY_PREFIX_LEN:
        return None
    return parts[1]
