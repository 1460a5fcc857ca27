"""The one settings class: defaults, a secured Temporal cluster, and refused secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from settings import Settings


def test_embedded_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite:///")
    assert settings.temporal_connect_options() == {"tls": False, "api_key": None}


def test_an_existing_cluster_with_an_api_key_uses_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "loans.example-ns.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_API_KEY", "k-123")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.temporal_address == "loans.example-ns.tmprl.cloud:7233"
    assert settings.temporal_connect_options() == {"tls": True, "api_key": "k-123"}


def test_mutual_tls_reads_the_client_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "client.pem").write_bytes(b"CERT")
    (tmp_path / "client.key").write_bytes(b"KEY")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    tls = Settings(_env_file=None).temporal_connect_options()["tls"]  # type: ignore[call-arg]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"CERT" and tls.client_private_key == b"KEY"


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANFLOW_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="LOANFLOW_SECRET_KEY"):
        Settings(_env_file=None)  # type: ignore[call-arg]
