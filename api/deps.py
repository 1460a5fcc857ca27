"""Dependencies as type aliases (house style 12): declare ``session: SessionDep`` in a route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError
from api.services.tokens import SignedIn, TokenRefused, signed_in
from api.services.users import actor_for
from api.temporal import TemporalConnection
from domain.loan import Actor, Role
from settings import Settings
from store.models import StaffUser

_BEARER = {"WWW-Authenticate": "Bearer"}
SESSION_COOKIE = "loanflow_session"  # set by the web pages' sign-in

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def _temporal(request: Request) -> TemporalConnection:
    return request.app.state.temporal


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
SessionDep = Annotated[Session, Depends(_session)]
TemporalConnectionDep = Annotated[TemporalConnection, Depends(_temporal)]


async def _temporal_client(temporal: TemporalConnectionDep) -> Client:
    return await temporal.client()


TemporalClientDep = Annotated[Client, Depends(_temporal_client)]


def _current_sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> SignedIn:
    if not token and request.method in ("GET", "HEAD"):
        # A document opened from the web pages (a notice's PDF, an export): the page's
        # session. Never for a change: those need the bearer token or the page's form.
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(401, "not authenticated", headers=_BEARER)
    try:
        return signed_in(session, token, settings)
    except TokenRefused as refused:
        raise ApiError(401, refused.reason, headers=_BEARER) from None


CurrentSignIn = Annotated[SignedIn, Depends(_current_sign_in)]


def _current_user(sign_in: CurrentSignIn) -> StaffUser:
    return sign_in.user


CurrentUser = Annotated[StaffUser, Depends(_current_user)]


def _current_actor(user: CurrentUser) -> Actor:
    return actor_for(user)


CurrentActor = Annotated[Actor, Depends(_current_actor)]


def require_roles(*roles: Role) -> Callable[[Actor], Actor]:
    """A dependency giving the actor, or 403 unless their role is one of ``roles``.

    ``actor: Annotated[Actor, Depends(require_roles(Role.APPROVER))]``, or in a route's
    ``dependencies=[...]``.
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    allowed = ", ".join(role.value for role in roles)

    def check_role(actor: CurrentActor) -> Actor:
        if actor.role not in roles:
            raise ApiError(403, f"only {allowed} may do this; your role is {actor.role.value}")
        return actor

    return check_role


def _page_or_bearer_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> StaffUser:
    """As ``CurrentUser``, but the web pages' session cookie counts for any method: only for
    what changes nothing, such as the codec's decode that the Temporal Web UI served under
    ``/temporal/`` calls with that cookie (a SameSite=Strict cookie no other site sends)."""
    token = token or request.cookies.get(SESSION_COOKIE)
    return _current_sign_in(request, session, settings, token).user


PageOrBearerUser = Annotated[StaffUser, Depends(_page_or_bearer_user)]
