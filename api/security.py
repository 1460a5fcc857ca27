"""Password hashing (argon2 via pwdlib) and access tokens (JWT, HS256, each with its id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError

from settings import Settings

ALGORITHM = "HS256"

_password_hash = PasswordHash.recommended()


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: whose it is, its id (jti, what signing out revokes) and
    when it expires."""

    username: str
    token_id: str
    expires_at: datetime


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """False for a wrong password and for a hash this build cannot read."""
    try:
        return _password_hash.verify(password, password_hash)
    except UnknownHashError:
        return False


def create_access_token(
    username: str, settings: Settings, *, expires_in: timedelta | None = None
) -> str:
    now = datetime.now(UTC)
    lifetime = (
        expires_in if expires_in is not None else timedelta(minutes=settings.access_token_minutes)
    )
    claims = {"sub": username, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> TokenClaims:
    """Whose the token is, and its id; revocation is checked by the caller (tokens service).

    Raises ``jwt.InvalidTokenError`` (``jwt.ExpiredSignatureError`` among them) when the
    token is malformed, tampered with, expired, or has no id (issued before revocation).
    """
    claims = jwt.decode(
        token,
        settings.secret_key,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "exp", "jti"]},
    )
    username, token_id = claims["sub"], claims["jti"]
    if not isinstance(username, str) or not username:
        raise jwt.InvalidTokenError("token has no subject")
    if not isinstance(token_id, str) or not token_id:
        raise jwt.InvalidTokenError("token has no id")
    return TokenClaims(username, token_id, datetime.fromtimestamp(claims["exp"], UTC))
