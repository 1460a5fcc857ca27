"""Signing out revokes the session's token at once, on SQLite and on PostgreSQL.

The web pages' cookie and the API's bearer token are the same token: after ``POST
/ui/logout`` (or ``POST /auth/logout``) it opens no page and calls no route, long before
it would have expired.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from api.deps import SESSION_COOKIE
from api.security import create_access_token, decode_access_token
from api.services.tokens import TokenRefused, revoke, signed_in
from api.services.users import DEV_PASSWORD
from api.web.session import csrf_token
from settings import Settings
from store.db import SessionFactory
from store.migrate import upgrade_database
from store.models import RevokedToken, utcnow

pytestmark = pytest.mark.usefixtures("seeded_users")


@pytest.fixture
def api_settings(api_settings: Settings, database_url: str) -> Settings:
    """The API's settings on each database (``database_url`` runs SQLite and PostgreSQL)."""
    upgrade_database(database_url)
    return api_settings.model_copy(update={"database_url": database_url})


async def _web_sign_in(http: AsyncClient, username: str) -> str:
    http.cookies.clear()
    page = await http.post(
        "/ui/login", data={"username": username, "password": DEV_PASSWORD, "next": "/ui/tasks"}
    )
    assert page.status_code == 303, page.text
    return str(http.cookies[SESSION_COOKIE])


async def test_web_logout_revokes_the_cookie_and_the_same_token_as_bearer(
    http: AsyncClient, app: FastAPI
) -> None:
    token = await _web_sign_in(http, "officer1")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/ui/tasks")).status_code == 200
    assert (await http.get("/auth/me", headers=bearer)).status_code == 200

    csrf = csrf_token(token, app.state.settings)
    out = await http.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"

    # A copy of the cookie kept by someone else (or the browser's back button) opens nothing.
    http.cookies.set(SESSION_COOKIE, token)
    page = await http.get("/ui/tasks")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/ui/login")
    refused = await http.get("/auth/me", headers=bearer)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["detail"]["message"] == "signed out; sign in again"
    # Signing in again gives a new session that works.
    await _web_sign_in(http, "officer1")
    assert (await http.get("/ui/tasks")).status_code == 200


async def test_api_logout_revokes_only_its_own_token(http: AsyncClient) -> None:
    async def token() -> dict[str, str]:
        response = await http.post(
            "/auth/token", data={"username": "approver1", "password": DEV_PASSWORD}
        )
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    phone, desk = await token(), await token()
    assert (await http.post("/auth/logout", headers=phone)).status_code == 204

    assert (await http.get("/auth/me", headers=phone)).status_code == 401
    assert (await http.post("/auth/logout", headers=phone)).status_code == 401
    assert (await http.get("/auth/me", headers=desk)).status_code == 200  # another session


def test_revocation_is_kept_until_expiry_and_expired_rows_are_pruned(
    sessions: SessionFactory, api_settings: Settings
) -> None:
    with sessions() as session:  # the app's database, seeded
        gone = RevokedToken(
            jti="expired-a-minute-ago",
            username="officer1",
            expires_at=utcnow() - timedelta(minutes=1),
        )
        session.add(gone)
        session.commit()
        token = create_access_token("officer1", api_settings)
        assert signed_in(session, token, api_settings).user.username == "officer1"

        revoke(session, decode_access_token(token, api_settings))
        revoke(session, decode_access_token(token, api_settings))  # twice is the same

        with pytest.raises(TokenRefused, match="signed out"):
            signed_in(session, token, api_settings)
        kept = session.exec(select(RevokedToken.jti)).all()
        assert kept == [decode_access_token(token, api_settings).token_id]
