"""``manage.py run`` keeps the service up: the real command, as ``./run.sh`` starts it.

It runs in its own data folder on free ports. The worker is killed and comes back; the
Temporal server is killed and kept away (its port held), a step answers 503 meanwhile and
works once Temporal is back; SIGINT then stops every part. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from api.services.users import DEV_PASSWORD
from settings import PROJECT_DIR
from tests.api.conftest import china_today
from tests.samples import application_data, report_data

STARTED = re.compile(r"started (?P<name>[\w-]+) \(pid (?P<pid>\d+)\)")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class _Run:
    """The run command as a child process, its output in a file."""

    def __init__(self, data_dir: Path) -> None:
        self.api_port, temporal_port, ui_port, stub_port = _free_ports(4)
        self.temporal_port = temporal_port
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOANFLOW_", "TEMPORAL_"))}
        env.update(
            PYTHONUNBUFFERED="1",
            LOANFLOW_ENVIRONMENT="development",
            LOANFLOW_DATA_DIR=str(data_dir),
            LOANFLOW_API_PORT=str(self.api_port),
            TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
            LOANFLOW_TEMPORAL_UI_PORT=str(ui_port),
            LOANFLOW_SMS_STUB_PORT=str(stub_port),
        )
        self.log_path = data_dir / "run.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run"],
                cwd=PROJECT_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, name: str) -> list[int]:
        """Every pid the supervisor started ``name`` with, oldest first."""
        return [int(m["pid"]) for m in STARTED.finditer(self.log()) if m["name"] == name]

    def all_pids(self) -> set[int]:
        return {int(m["pid"]) for m in STARTED.finditer(self.log())}

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        tail = "\n".join(self.log().splitlines()[-40:])
        raise AssertionError(f"{what}: not within {timeout:g}s\n--- run log ---\n{tail}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


@contextlib.contextmanager
def _port_held(port: int) -> Iterator[None]:
    """Listens on ``port`` and hangs up on every caller: Temporal stays away, as its
    restarts cannot bind the port, and clients find nothing that answers."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 5
    while True:
        try:
            listener.bind(("127.0.0.1", port))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    listener.listen()
    listener.settimeout(0.2)
    done = threading.Event()

    def hang_up() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()


def _token(api: httpx.Client, username: str) -> dict[str, str]:
    response = api.post("/auth/token", data={"username": username, "password": DEV_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _healthy(api: httpx.Client) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return api.get("/healthz").status_code == 200
    return False


def _stage(api: httpx.Client, headers: dict[str, str], loan_id: str) -> str:
    return str(api.get(f"/loans/{loan_id}", headers=headers).json()["workflow"]["stage"])


def _report(api: httpx.Client, headers: dict[str, str], loan_id: str) -> httpx.Response:
    return api.post(f"/loans/{loan_id}/investigations", json=report_data(), headers=headers)


def test_the_run_command_restarts_its_parts_and_stops_them_all(tmp_path: Path) -> None:
    run = _Run(tmp_path)
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{run.api_port}", timeout=30)
        run.wait_for("the API answering", lambda: _healthy(api), timeout=90)
        officer1, officer2 = _token(api, "officer1"), _token(api, "officer2")

        # The worker dies: it is started again, and runs the next loan's intake.
        [worker] = run.pids("worker")
        os.kill(worker, signal.SIGKILL)
        run.wait_for("the worker restarted", lambda: len(run.pids("worker")) == 2, timeout=15)
        assert f"worker (pid {worker}) exited with code -9; restarting in 1s" in run.log()
        applied = api.post("/loans", json=application_data(china_today()), headers=officer1)
        assert applied.status_code == 201, applied.text
        loan_id = applied.json()["loan_id"]
        run.wait_for(
            "intake", lambda: _stage(api, officer1, loan_id) == "investigation", timeout=30
        )
        assert _report(api, officer1, loan_id).status_code == 200

        # Temporal dies and stays away: the API still answers, a step is 503 and changes
        # nothing; once Temporal is back the same step goes through.
        [temporal] = run.pids("temporal")
        os.kill(temporal, signal.SIGKILL)
        with _port_held(run.temporal_port):
            refused = _report(api, officer2, loan_id)
            assert refused.status_code == 503, refused.text
            assert "Temporal" in refused.json()["detail"]["message"]
            assert api.get("/healthz").status_code == 503
            # Its restart could not bind the port: the next one waits twice as long.
            assert re.search(
                r"temporal \(pid \d+\) exited with code 1; restarting in 2s", run.log()
            )
        run.wait_for("Temporal back", lambda: _healthy(api), timeout=45)
        accepted = _report(api, officer2, loan_id)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["stage"] == "review"
        api.close()

        started = run.all_pids()
        assert len(started) >= 6  # temporal, sms-stub, worker, api and the restarts
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(timeout=60) == 0
        assert {pid for pid in started if _alive(pid)} == set()
    finally:
        for pid in [run.process.pid, *run.all_pids()]:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        run.process.wait(timeout=10)
