"""The Temporal Web UI for auditors (H-3), served by the API under ``/temporal/``, read-only.

Temporal keeps every payload encrypted; the Web UI shows one decoded only when its codec
endpoint decodes it. The UI calls that endpoint with ``fetch()`` and no token of its own,
so it is served from the API's own origin: its calls to ``/codec/decode`` then carry the
staff session cookie, and the codec decodes for auditors and the administrator alone.

The UI server listens on 127.0.0.1 only, with ``UI_SERVER_ARGS``; here it is passed
through to a signed-in auditor or administrator, everyone else is refused. Only GET and
HEAD go through: nothing the UI could do to a workflow (terminate, reset, signal) does,
and the UI is told so (its settings say write actions are disabled), so it offers none.
"""

from __future__ import annotations

import json
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from api.deps import SESSION_COOKIE
from api.errors import ApiError
from api.web.session import WebActor
from domain.loan import Actor, Role

PUBLIC_PATH = "/temporal"
# The dev server's Web UI as the run command starts it: on this machine only, under
# PUBLIC_PATH, decoding through this API's codec (same origin), no news feed from outside.
UI_SERVER_ARGS = [
    "--ui-ip",
    "127.0.0.1",
    "--ui-public-path",
    PUBLIC_PATH,
    "--ui-codec-endpoint",
    "/codec",
    "--ui-disable-news-fetch",
]
READERS = (Role.AUDITOR, Role.ADMIN)
UI_SETTINGS = "api/v1/settings"
# Hop-by-hop and framing headers: each side of the proxy sets its own.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "cookie",
        "authorization",
    }
)

router = APIRouter(prefix=PUBLIC_PATH, include_in_schema=False)


def _reader(actor: WebActor) -> Actor:
    if actor.role not in READERS:
        allowed = ", ".join(role.value for role in READERS)
        raise ApiError(403, f"the Temporal Web UI is for {allowed}; your role is {actor.role}")
    return actor


Reader = Annotated[Actor, Depends(_reader)]


def ui_client(upstream: str) -> httpx.AsyncClient:
    """The client the proxy reaches the UI server with (kept by the app for its lifetime)."""
    return httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(30, connect=5))


def _request_headers(request: Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k not in _NOT_FORWARDED}
    # The UI server's own cookies (its CSRF token) go on; the staff session stays here.
    cookies = [f"{k}={v}" for k, v in request.cookies.items() if k != SESSION_COOKIE]
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    return headers


def _response_headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in response.headers.raw if k.decode().lower() not in _NOT_FORWARDED]


@router.get("")
def ui_root(_: Reader) -> RedirectResponse:
    return RedirectResponse(f"{PUBLIC_PATH}/", status_code=307)


@router.api_route("/{path:path}", methods=["GET", "HEAD"])
async def ui_page(path: str, request: Request, _: Reader) -> Response:
    """The UI's pages, assets and API calls, passed through as they are."""
    client: httpx.AsyncClient = request.app.state.temporal_ui
    # Path and query as the browser sent them, still percent-encoded (a workflow id may
    # hold a "/").
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    target = raw_path.decode("latin-1") + (f"?{request.url.query}" if request.url.query else "")
    outgoing = client.build_request(request.method, target, headers=_request_headers(request))
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.TransportError:
        raise ApiError(503, "the Temporal Web UI is not reachable; try again shortly") from None
    if path == UI_SETTINGS and upstream.status_code == 200:
        return await _read_only_settings(upstream)
    response = StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    response.raw_headers = _response_headers(upstream)
    return response


async def _read_only_settings(upstream: httpx.Response) -> Response:
    try:
        settings = json.loads(await upstream.aread())
    finally:
        await upstream.aclose()
    settings["DisableWriteActions"] = True
    return JSONResponse(settings)


@router.api_route("/{path:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
def ui_action(path: str, _: Reader) -> Response:
    """Terminate, reset, signal, ...: the UI is for reading the history here."""
    raise ApiError(403, f"the Temporal Web UI is read-only here; {path} is not passed on")
