"""Sign-in, tokens and role checks through HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlmodel import select

from api.deps import require_roles
from api.security import ALGORITHM, create_access_token, decode_access_token
from api.services.users import DEV_PASSWORD
from api.throttle import (
    CLIENT_FREE_FAILURES,
    FIRST_WAIT_SECONDS,
    FORGIVE_ONE_EVERY_SECONDS,
    FREE_FAILURES,
    LoginThrottle,
)
from domain.loan import Actor, Role
from settings import Settings
from store.models import StaffUser
from tests.api.conftest import Login

pytestmark = pytest.mark.usefixtures("seeded_users")


async def _token(http: AsyncClient, username: str, password: str) -> Response:
    return await http.post("/auth/token", data={"username": username, "password": password})


async def test_right_password_gets_a_bearer_token(
    http: AsyncClient, api_settings: Settings
) -> None:
    response = await _token(http, "officer1", DEV_PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert decode_access_token(body["access_token"], api_settings).username == "officer1"


@pytest.mark.parametrize("username", ["officer1", "nobody"])
async def test_wrong_password_and_unknown_user_get_the_same_401(
    http: AsyncClient, username: str
) -> None:
    response = await _token(http, username, "wrong-password")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "detail": {
            "message": "incorrect username or password",
            "rule": None,
            "errors": [{"field": None, "rule": None, "reason": "incorrect username or password"}],
        }
    }


async def test_inactive_user_cannot_sign_in_or_use_an_old_token(
    http: AsyncClient, app: FastAPI, login: Login
) -> None:
    headers = await login("officer3")
    with app.state.sessions() as session:
        user = session.exec(select(StaffUser).where(StaffUser.username == "officer3")).one()
        user.active = False
        session.add(user)
        session.commit()

    assert (await _token(http, "officer3", DEV_PASSWORD)).status_code == 401
    response = await http.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_shows_role_branch_and_limit(http: AsyncClient, login: Login) -> None:
    response = await http.get("/auth/me", headers=await login("approver1"))

    assert response.status_code == 200
    assert response.json() == {
        "username": "approver1",
        "full_name": "陈立",
        "role": "approver",
        "branch": "CB01",
        "tier": "county",
        "approval_limit": "50000.00",
    }


async def test_me_for_an_officer_has_no_tier_or_limit(http: AsyncClient, login: Login) -> None:
    body = (await http.get("/auth/me", headers=await login("officer1"))).json()

    assert (body["role"], body["branch"], body["tier"], body["approval_limit"]) == (
        "loan_officer",
        "CB01",
        None,
        None,
    )


async def test_no_token_is_401(http: AsyncClient) -> None:
    response = await http.get("/auth/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]["message"] == "not authenticated"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    # Flip one character of the signature.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return ".".join([header, payload, flipped])


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda s: _tampered(create_access_token("officer1", s)), id="tampered"),
        pytest.param(
            lambda s: create_access_token("officer1", s, expires_in=timedelta(minutes=-1)),
            id="expired",
        ),
        pytest.param(
            lambda s: jwt.encode({"sub": "admin", "exp": 4102444800}, "x" * 40, ALGORITHM),
            id="other-key",
        ),
        pytest.param(
            lambda s: jwt.encode({"sub": "admin"}, s.secret_key, ALGORITHM), id="no-expiry"
        ),
        pytest.param(  # issued before tokens had ids: nothing could revoke it
            lambda s: jwt.encode({"sub": "admin", "exp": 4102444800}, s.secret_key, ALGORITHM),
            id="no-token-id",
        ),
        pytest.param(lambda s: "not-a-jwt", id="garbage"),
    ],
)
async def test_bad_tokens_are_401(http: AsyncClient, api_settings: Settings, make_token) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {make_token(api_settings)}"}

    response = await http.get("/auth/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]["message"] == "invalid or expired token"


async def test_token_of_a_deleted_user_is_401(http: AsyncClient, api_settings: Settings) -> None:
    headers = {"Authorization": f"Bearer {create_access_token('ghost', api_settings)}"}

    response = await http.get("/auth/me", headers=headers)

    assert response.status_code == 401


@pytest.fixture
def approvers_only(app: FastAPI) -> None:
    router = APIRouter()

    @router.get("/_test/approvers-only")
    def approvers_only(
        actor: Annotated[Actor, Depends(require_roles(Role.APPROVER, Role.BRANCH_HEAD))],
    ) -> dict[str, str]:
        return {"username": actor.username}

    app.include_router(router)


@pytest.mark.usefixtures("approvers_only")
async def test_require_roles_lets_listed_roles_through(http: AsyncClient, login: Login) -> None:
    for username in ("approver1", "head1"):
        response = await http.get("/_test/approvers-only", headers=await login(username))
        assert response.status_code == 200
        assert response.json() == {"username": username}


@pytest.mark.usefixtures("approvers_only")
async def test_require_roles_refuses_other_roles_with_403(http: AsyncClient, login: Login) -> None:
    response = await http.get("/_test/approvers-only", headers=await login("officer1"))

    assert response.status_code == 403
    message = response.json()["detail"]["message"]
    assert "approver" in message and "branch_head" in message and "loan_officer" in message


@pytest.mark.usefixtures("approvers_only")
async def test_require_roles_needs_a_token_first(http: AsyncClient) -> None:
    assert (await http.get("/_test/approvers-only")).status_code == 401


@pytest.mark.parametrize("username", ["officer2", "nobody-at-all"])
async def test_repeated_failures_are_slowed_the_same_for_real_and_unknown_names(
    http: AsyncClient, username: str
) -> None:
    for _ in range(3):
        assert (await _token(http, username, "wrong-password")).status_code == 401
    assert (await _token(http, username, "wrong-password")).status_code == 401  # starts a wait
    locked = await _token(http, username, DEV_PASSWORD)  # even the right one waits
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert locked.json()["detail"]["message"] == "too many failed sign-ins; try again later"
    # Others are not held up by it.
    assert (await _token(http, "officer1", DEV_PASSWORD)).status_code == 200


async def test_a_burst_of_guesses_sent_at_once_meets_the_failures_before_it(
    http: AsyncClient, seeded_users: object
) -> None:
    """Sign-ins from one client go one at a time, so forty guesses at once are not forty
    tries: past the free failures the rest wait (429)."""
    answers = await asyncio.gather(*(_token(http, "approver1", "guess") for _ in range(40)))
    codes = [a.status_code for a in answers]
    assert codes.count(401) == FREE_FAILURES + 1 and codes.count(429) == 40 - FREE_FAILURES - 1


def test_the_wait_doubles_and_a_success_clears_it() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    here = "10.0.0.7"
    for _ in range(3):
        throttle.failed("Officer1", here)
    assert throttle.wait_seconds("officer1", here) == 0.0  # three failures are free
    throttle.failed("officer1", here)
    assert throttle.wait_seconds("OFFICER1", here) == 2.0  # names compare case-insensitively
    assert throttle.wait_seconds("officer1", "10.0.0.8") == 0.0  # only at that client
    throttle.failed("officer1", here)
    assert throttle.wait_seconds("officer1", here) == 4.0
    now[0] += 4.0
    assert throttle.wait_seconds("officer1", here) == 0.0
    throttle.succeeded("officer1", here)
    throttle.failed("officer1", here)
    assert throttle.wait_seconds("officer1", here) == 0.0  # three free failures again


def test_a_client_failing_over_many_names_waits_for_any_name() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    sprayer = "10.0.0.66"
    for n in range(CLIENT_FREE_FAILURES):
        throttle.failed(f"name{n}", sprayer)
        throttle.succeeded("mallory", sprayer)  # their own account clears nothing of it
    assert throttle.wait_seconds("another-name", sprayer) == 0.0
    throttle.failed("one-more", sprayer)
    assert throttle.wait_seconds("another-name", sprayer) == FIRST_WAIT_SECONDS
    throttle.failed("and-another", sprayer)
    assert throttle.wait_seconds("officer1", sprayer) == 2 * FIRST_WAIT_SECONDS
    assert throttle.wait_seconds("officer1", "10.0.0.8") == 0.0  # others are not held up


def test_failures_are_forgiven_one_per_longest_wait_of_quiet() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(FREE_FAILURES + 1):
        throttle.failed("officer1", "10.0.0.7")
    now[0] += 2 * FORGIVE_ONE_EVERY_SECONDS  # two of the four forgiven: two counted
    throttle.failed("officer1", "10.0.0.7")  # the third is still free
    assert throttle.wait_seconds("officer1", "10.0.0.7") == 0.0
    throttle.failed("officer1", "10.0.0.7")  # the fourth starts the wait again
    assert throttle.wait_seconds("officer1", "10.0.0.7") == FIRST_WAIT_SECONDS


@asynccontextmanager
async def _client_at(app: FastAPI, address: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=(address, 50000))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_an_attackers_failures_never_keep_the_owner_out_from_elsewhere(
    app: FastAPI,
) -> None:
    async with _client_at(app, "203.0.113.9") as attacker, _client_at(app, "10.1.1.5") as owner:
        for _ in range(FREE_FAILURES + 1):
            assert (await _token(attacker, "approver1", "guess")).status_code == 401
        assert (await _token(attacker, "approver1", DEV_PASSWORD)).status_code == 429
        assert (await _token(owner, "approver1", DEV_PASSWORD)).status_code == 200
        page = await owner.post(
            "/ui/login", data={"username": "approver1", "password": DEV_PASSWORD}
        )
        assert page.status_code == 303  # the web sign-in too


async def test_one_client_trying_many_names_is_slowed(app: FastAPI) -> None:
    async with _client_at(app, "203.0.113.10") as sprayer, _client_at(app, "10.1.1.6") as other:
        answers = [
            (await _token(sprayer, f"staff{n}", "Spring2026!")).status_code
            for n in range(CLIENT_FREE_FAILURES + 1)
        ]
        assert answers == [401] * (CLIENT_FREE_FAILURES + 1)  # one failure per name
        slowed = await _token(sprayer, "officer1", "Spring2026!")
        assert slowed.status_code == 429
        assert int(slowed.headers["retry-after"]) >= 1
        page = await sprayer.post("/ui/login", data={"username": "head1", "password": "x"})
        assert page.status_code == 429 and "秒后再试" in page.text
        assert (await _token(other, "officer1", DEV_PASSWORD)).status_code == 200
