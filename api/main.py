"""The FastAPI application. Run with ``uvicorn api.main:create_app --factory``.

There is no module-level app: nothing connects or reads settings at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_error_handlers
from api.logging import install_pii_filter
from api.routes import auth, codec, health, ledger, loans, notices, servicing, tasks
from api.temporal import TemporalConnection
from api.throttle import LoginThrottle
from api.web.routes import install_web_pages
from domain.policy import load_policy
from settings import Settings, get_settings
from store.db import make_engine, session_factory

DESCRIPTION = """\
农户小额贷款：从申请、调查、审查审批到放款、贷后管理的全流程，由 Temporal 工作流驱动。

Rural household micro-loans from application, investigation, review and tiered
approval to disbursement and post-loan management, driven by Temporal workflows.
Sign in at `/auth/token`; every rule the API enforces is cited by its rulebook ID.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # A bad policy file stops the API here, naming the bad key, before it takes a request.
    policy = load_policy(settings.policy_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Migrations are the run command's job, not the API's.
        install_pii_filter()  # rule H-3, however the API was started
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.policy = policy
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        # Connects on first use: the API starts, and /healthz reports, while Temporal is down.
        app.state.temporal = TemporalConnection.from_settings(settings)
        app.state.login_throttle = LoginThrottle()
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(title="loanflow", description=DESCRIPTION, version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)

    routers = [
        auth.router,
        health.router,
        loans.router,
        servicing.router,
        servicing.inspections_router,
        servicing.handovers_router,
        notices.router,
        tasks.router,
        ledger.router,
        codec.router,
    ]
    for router in routers:
        app.include_router(router)
    install_web_pages(app)
    # The Temporal Web UI calls /codec from its own origin, with the auditor's token.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[
            f"http://localhost:{settings.temporal_ui_port}",
            f"http://127.0.0.1:{settings.temporal_ui_port}",
        ],
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    return app
