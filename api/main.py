"""The FastAPI application. Run with ``uvicorn api.main:create_app --factory``.

There is no module-level app: nothing connects or reads settings at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.errors import install_error_handlers
from api.logging import install_pii_filter
from api.openapi import document_errors
from api.routes import auth, codec, health, ledger, loans, notices, servicing, tasks, temporal_ui
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
        app.state.temporal_ui = temporal_ui.ui_client(settings.temporal_ui_server)
        try:
            yield
        finally:
            await app.state.temporal_ui.aclose()
            engine.dispose()

    # /docs and /redoc with their scripts from the installed package: no CDN on an intranet.
    app = FastAPIOffline(
        title="loanflow", description=DESCRIPTION, version="0.1.0", lifespan=lifespan
    )
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
        temporal_ui.router,
    ]
    for router in routers:
        app.include_router(router)
    install_web_pages(app)
    document_errors(app)
    return app
