"""Signed-in sessions: a token is good until it expires or its owner signs out (退出登录).

Signing out records the token's id (jti) in ``revoked_tokens``; the API and the web pages
refuse it from the next request on, as a bearer token and as the pages' cookie alike.
"""

from __future__ import annotations

from typing import NamedTuple

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from api.security import TokenClaims, decode_access_token
from api.services.users import get_active_user
from settings import Settings
from store.models import RevokedToken, StaffUser, utcnow


class TokenRefused(Exception):
    """The token cannot be used; ``reason`` says why, for the 401's message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignedIn(NamedTuple):
    user: StaffUser
    claims: TokenClaims


def signed_in(session: Session, token: str, settings: Settings) -> SignedIn:
    """The active user a token stands for; TokenRefused if it is bad, expired, signed out,
    or its user is unknown or inactive."""
    try:
        claims = decode_access_token(token, settings)
    except jwt.InvalidTokenError:
        raise TokenRefused("invalid or expired token") from None
    if session.get(RevokedToken, claims.token_id) is not None:
        raise TokenRefused("signed out; sign in again")
    user = get_active_user(session, claims.username)
    if user is None:
        raise TokenRefused("unknown or inactive user")
    return SignedIn(user, claims)


def revoke(session: Session, claims: TokenClaims) -> None:
    """Signs the token out at once; rows of tokens that have expired anyway are pruned."""
    session.exec(delete(RevokedToken).where(col(RevokedToken.expires_at) < utcnow()))
    if session.get(RevokedToken, claims.token_id) is None:
        session.add(
            RevokedToken(
                jti=claims.token_id, username=claims.username, expires_at=claims.expires_at
            )
        )
    try:
        session.commit()
    except IntegrityError:  # signed out twice at the same moment: it is revoked either way
        session.rollback()
