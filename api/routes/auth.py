"""Sign-in (OAuth2 password flow) and the signed-in user's profile."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import CurrentActor, CurrentSignIn, SessionDep, SettingsDep
from api.errors import ApiError
from api.security import create_access_token
from api.services.tokens import revoke
from api.services.users import authenticate
from api.throttle import LoginThrottle, client_address
from domain.loan import Role, Tier

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    username: str
    full_name: str
    role: Role
    branch: str
    tier: Tier | None
    approval_limit: Decimal | None


# Sync routes: password hashing and the session are blocking, so they run in the threadpool.
@router.post("/token", summary="Sign in with username and password")
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """A wrong username and a wrong password get the same answer. After a few failures of a
    name from one client, or many over any names, that client must wait, longer after each
    further failure (429 with Retry-After); other clients are not held up by it."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = client_address(request)
    with throttle.one_at_a_time(client):
        wait = throttle.wait_seconds(form.username, client)
        if wait > 0:
            raise ApiError(
                429,
                "too many failed sign-ins; try again later",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        user = authenticate(session, form.username, form.password)
        if user is None:
            throttle.failed(form.username, client)
            raise ApiError(
                401, "incorrect username or password", headers={"WWW-Authenticate": "Bearer"}
            )
        throttle.succeeded(form.username, client)
    return Token(access_token=create_access_token(user.username, settings))


@router.post("/logout", status_code=204, summary="Sign out: revoke this bearer token")
def logout(sign_in: CurrentSignIn, session: SessionDep) -> Response:
    """The token is refused from the next request on (401), until and after it expires."""
    revoke(session, sign_in.claims)
    return Response(status_code=204)


@router.get("/me", summary="The signed-in user")
def me(actor: CurrentActor) -> Me:
    return Me(
        username=actor.username,
        full_name=actor.name,
        role=actor.role,
        branch=actor.branch,
        tier=actor.tier,
        approval_limit=actor.approval_limit,
    )
