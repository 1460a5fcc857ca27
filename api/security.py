"""Password hashing (argon2 via pwdlib) and access tokens (JWT, HS256)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError

from settings import Settings

ALGORITHM = "HS256"

_password_hash = PasswordHash.recommended()


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
    claims = {"sub": username, "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> str:
    """The username the token was issued to.

    Raises ``jwt.InvalidTokenError`` (``jwt.ExpiredSignatureError`` among them) when the
    token is malformed, tampered with or expired.
    """
    claims = jwt.decode(
        token, settings.secret_key, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
    )
    username = claims["sub"]
    if not isinstance(username, str) or not username:
        raise jwt.InvalidTokenError("token has no subject")
    return username
