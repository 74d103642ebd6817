"""Settings come from the environment and fail fast with the variable's name."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from mediagen.scaffold import ServerSettings, load_settings


class ExampleSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAGEN_EXAMPLE_", extra="ignore")


def test_settings_are_read_with_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_EXAMPLE_PORT", "50077")
    monkeypatch.setenv("MEDIAGEN_EXAMPLE_AUTH_TOKEN", "s3cret-value")
    settings = load_settings(ExampleSettings)
    assert settings.port == 50077
    assert settings.auth_token is not None
    assert "s3cret-value" not in repr(settings)


def test_a_bad_value_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDIAGEN_EXAMPLE_PORT", "not-a-port")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ExampleSettings)
    assert stopped.value.code == 2
    assert "MEDIAGEN_EXAMPLE_PORT" in capsys.readouterr().err


def test_an_unknown_variable_under_the_prefix_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDIAGEN_EXAMPLE_PORT", "50077")
    monkeypatch.setenv("MEDIAGEN_EXAMPLE_PEER_CERT_FILE", "/etc/client.pem")
    monkeypatch.setenv("MEDIAGEN_OTHER_THING", "not ours, not checked")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ExampleSettings)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "MEDIAGEN_EXAMPLE_PEER_CERT_FILE: not a setting of this service" in err
    assert "MEDIAGEN_OTHER_THING" not in err
    assert "MEDIAGEN_EXAMPLE_PORT" not in err
