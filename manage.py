"""loanflow's command line: run the whole service, or one piece of it.

python manage.py run                         # dev server + worker + API (the README's run command)
python manage.py migrate                     # apply Alembic migrations to LOANFLOW_DATABASE_URL
python manage.py seed                        # development branches and staff
python manage.py check-policy [FILE]         # validate a policy file and the holiday tables
python manage.py register-search-attributes  # once, on an existing Temporal cluster
python manage.py begin-servicing             # once, after upgrading from before servicing
python manage.py sms-stub [--fail-first N]   # a local stand-in SMS gateway (run starts one)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from pathlib import Path

from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from api.logging import configure_logging
from api.routes.temporal_ui import UI_SERVER_ARGS
from domain.policy import Policy, PolicyFileError, load_policy
from settings import Settings, bundled_binary, get_settings
from supervisor import Part, Supervisor
from workflows.search_attributes import ALL_KEYS, registrations


def check_policy(path: Path) -> Policy:
    try:
        policy = load_policy(path)
    except PolicyFileError as exc:
        raise SystemExit(f"loanflow: {exc}") from exc
    print(f"policy {policy.version} ({policy.institution}) from {path}: ok")
    return policy


def check_calendar(folder: Path) -> None:
    """Rule A-5: every holiday table in the folder, as the worker checks them at start."""
    from adapters.calendar import CalendarTableError, load_tables

    try:
        tables = load_tables(folder)
    except CalendarTableError as exc:
        raise SystemExit(f"loanflow: {exc}") from exc
    found = ", ".join(f"{year} ({table.basis})" for year, table in tables.items())
    print(f"holiday tables in {folder}: {found or 'none'}: ok")


def migrate(settings: Settings) -> None:
    from store.migrate import upgrade_database

    upgrade_database(settings.database_url)
    print(f"database migrated: {_safe_url(settings.database_url)}")


def seed(settings: Settings) -> None:
    from api.services.users import seed_development_data
    from store.db import make_engine, session_factory

    engine = make_engine(settings.database_url)
    with session_factory(engine)() as session:
        users = seed_development_data(session)
    engine.dispose()
    print("development staff:")
    for user in users:
        limit = f", limit {user.limit} yuan" if user.limit else ""
        print(
            f"  {user.username:<14} {user.role:<18} {user.branch}{limit}  password: {user.password}"
        )


async def register_search_attributes(settings: Settings) -> None:
    """Idempotent: adds the loan search attributes a cluster does not have yet."""
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        **settings.temporal_connect_options(),
    )
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=settings.temporal_namespace)
    )
    wanted = {
        name: kind
        for name, kind in registrations().items()
        if name not in existing.custom_attributes
    }
    if wanted:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=settings.temporal_namespace, search_attributes=wanted
            )
        )
    print(f"search attributes registered: {', '.join(k.name for k in ALL_KEYS)}")


async def begin_servicing(settings: Settings) -> int:
    """Moves loans paid out before post-loan management existed into it: their workflows
    wait at disbursement (kept so by ``workflow.patched("servicing")``) for this signal."""
    from workflows.loan import LoanWorkflow
    from workflows.messages import BeginServicing

    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=settings.data_converter(),
        **settings.temporal_connect_options(),
    )
    query = (
        "WorkflowType = 'LoanWorkflow' AND ExecutionStatus = 'Running' AND LoanStage = 'disbursed'"
    )
    moved = 0
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        await handle.signal(LoanWorkflow.begin_servicing, BeginServicing())
        moved += 1
    print(f"post-loan management begun for {moved} disbursed loan(s)")
    return moved


def sms_stub(host: str, port: int, fail_first: int, fail_status: int) -> None:
    from adapters.sms_stub import StubSmsGateway

    configure_logging(logging.INFO)
    stub = StubSmsGateway(host, port, fail_first=fail_first, fail_status=fail_status)
    print(f"SMS gateway stub on {stub.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, or run stopping it
        stub.serve_forever()


def run(settings: Settings) -> int:
    """Everything with embedded defaults, each part restarted when it exits (see supervisor);
    Ctrl-C stops all of it, the newest part first."""
    check_policy(settings.policy_file)
    check_calendar(settings.calendar_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    if settings.environment == "development":
        seed(settings)
    configure_logging(logging.INFO)
    parts: list[Part] = []
    if settings.embedded_temporal:
        address = _host_port(settings.temporal_address)
        parts.append(Part("temporal", temporal_dev_server_command(settings), port=address))
    else:
        _wait_for_port(*_host_port(settings.temporal_address), timeout=60)
        asyncio.run(register_search_attributes(settings))
    gateway_url, worker_env = settings.sms_gateway_url, None
    if not gateway_url:
        # No gateway configured: texts go to the local stub, which logs them (masked).
        stub_port = settings.sms_stub_port
        stub_cmd = [sys.executable, "manage.py", "sms-stub", "--port", str(stub_port)]
        parts.append(Part("sms-stub", stub_cmd, port=("127.0.0.1", stub_port)))
        gateway_url = f"http://127.0.0.1:{stub_port}/sms"
        worker_env = {**os.environ, "LOANFLOW_SMS_GATEWAY_URL": gateway_url}
    parts.append(Part("worker", [sys.executable, "worker.py"], worker_env))
    api_cmd = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory"]
    api_cmd += ["--host", settings.api_host, "--port", str(settings.api_port)]
    parts.append(Part("api", api_cmd, port=(settings.api_host, settings.api_port)))
    return Supervisor(parts).run(on_started=lambda: _print_addresses(settings, gateway_url))


def temporal_dev_server_command(settings: Settings) -> list[str]:
    """The embedded Temporal dev server, as the run command starts (and restarts) it."""
    host, port = _host_port(settings.temporal_address)
    cmd = [
        str(bundled_binary("temporal")),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ip",
        host if host != "localhost" else "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        # Payloads are encrypted (H-3): the API serves the UI to auditors, who see them decoded.
        *UI_SERVER_ARGS,
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "error",
    ]
    for key in ALL_KEYS:
        cmd += ["--search-attribute", f"{key.name}=Keyword"]
    return cmd


def _print_addresses(settings: Settings, gateway_url: str) -> None:
    print()
    print(f"  staff web inbox   {settings.api_url}/ui/  (development accounts above)")
    print(f"  loanflow API      {settings.api_url}")
    print(f"  API docs          {settings.api_url}/docs")
    if settings.embedded_temporal:
        print(f"  Temporal UI       {settings.temporal_ui_url}")
    namespace = settings.temporal_namespace
    print(f"  Temporal          {settings.temporal_address} (namespace {namespace})")
    print(f"  read model        {_safe_url(settings.database_url)}")
    stub = " (local stub)" if not settings.sms_gateway_url else ""
    print(f"  SMS gateway       {gateway_url}{stub}")
    print("  A part that exits is restarted; Ctrl-C stops everything.", flush=True)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "localhost", int(port)


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"loanflow: nothing answered on {host}:{port} within {timeout:.0f}s")


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="Temporal dev server + worker + API with embedded defaults")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("seed", help="create development branches and staff")
    policy = sub.add_parser("check-policy", help="validate a policy file and the holiday tables")
    policy.add_argument("file", nargs="?", type=Path)
    sub.add_parser("register-search-attributes", help="add the loan search attributes to a cluster")
    sub.add_parser("begin-servicing", help="move loans paid out before servicing into it")
    stub = sub.add_parser("sms-stub", help="a local stand-in SMS gateway (logs texts, masked)")
    stub.add_argument("--host", default="127.0.0.1")
    stub.add_argument("--port", type=int, default=None, help="default: LOANFLOW_SMS_STUB_PORT")
    stub.add_argument("--fail-first", type=int, default=0, help="fail each message's first N")
    stub.add_argument("--fail-status", type=int, default=503, help="the failing answer's status")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "run":
        return run(settings)
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "seed":
        seed(settings)
    elif args.command == "check-policy":
        check_policy(args.file or settings.policy_file)
        check_calendar(settings.calendar_dir)
    elif args.command == "register-search-attributes":
        asyncio.run(register_search_attributes(settings))
    elif args.command == "begin-servicing":
        asyncio.run(begin_servicing(settings))
    elif args.command == "sms-stub":
        port = settings.sms_stub_port if args.port is None else args.port
        sms_stub(args.host, port, args.fail_first, args.fail_status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
