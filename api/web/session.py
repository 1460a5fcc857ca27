"""Signing in to the web pages: the API's token, kept in an HttpOnly cookie, and a CSRF token.

The cookie is SameSite=Strict, and every form also carries a token derived from the session,
so a page from another site can neither read nor post as the signed-in member of staff.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlmodel import Session

from api.deps import SESSION_COOKIE, SessionDep, SettingsDep
from api.services.tokens import TokenRefused, signed_in
from api.services.users import actor_for, get_active_user
from domain.loan import Actor
from settings import Settings

COOKIE = SESSION_COOKIE


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the sign-in form, then back."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path

    @property
    def login_url(self) -> str:
        return f"/ui/login?next={quote(self.next_path)}"


class CsrfRejected(Exception):
    """A form posted without the token of the session that rendered it."""


def safe_next(path: str | None) -> str:
    """Only our own pages (and the Temporal Web UI we serve): a ``next`` pointing elsewhere
    would make an open redirect."""
    ours = ("/ui/", "/temporal/")
    if path and path.startswith(ours) and not path.startswith("//") and "\\" not in path:
        return path
    return "/ui/tasks"


def csrf_token(session_token: str, settings: Settings) -> str:
    digest = hmac.new(
        settings.secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256
    )
    return digest.hexdigest()[:40]


def _web_actor(request: Request, session: SessionDep, settings: SettingsDep) -> Actor:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    try:
        user, _ = signed_in(session, token, settings)
    except TokenRefused:  # expired, signed out, or no longer active
        raise LoginRequired(request.url.path) from None
    request.state.csrf = csrf_token(token, settings)
    return actor_for(user)


WebActor = Annotated[Actor, Depends(_web_actor)]


async def check_csrf(request: Request, settings: Settings) -> None:
    form = await request.form()
    sent = form.get("csrf")
    token = request.cookies.get(COOKIE, "")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(token, settings)):
        raise CsrfRejected


def full_name(session: Session, username: str) -> str:
    user = get_active_user(session, username)
    return user.full_name if user else username
