"""The container probe: plaintext, TLS and mutual TLS, from flags or the environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mediagen.scaffold import ServerSettings
from tests.scaffold.probe_service import serving_probe, tls_settings
from tests.support.certs import make_test_pki


async def probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediagen.stack.healthcheck",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode()


async def test_plaintext_service_is_serving() -> None:
    async with serving_probe(ServerSettings()) as target:
        port = target.rsplit(":", 1)[1]
        code, output = await probe(f"127.0.0.1:{port}")
        assert (code, output.strip()) == (0, f"127.0.0.1:{port}: SERVING")


async def test_mutual_tls_service_answers_a_probe_with_its_client_certificate(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    async with serving_probe(tls_settings(pki, mutual=True)) as target:
        flags = (
            "--ca-file",
            str(pki.ca_cert),
            "--cert-file",
            str(pki.client_cert),
            "--key-file",
            str(pki.client_key),
        )
        assert (await probe(target, *flags))[0] == 0
        from_env = {
            "MEDIAGEN_HEALTHCHECK_CA_FILE": str(pki.ca_cert),
            "MEDIAGEN_HEALTHCHECK_CERT_FILE": str(pki.client_cert),
            "MEDIAGEN_HEALTHCHECK_KEY_FILE": str(pki.client_key),
        }
        assert (await probe(target, env=from_env))[0] == 0
        code, output = await probe(target, "--ca-file", str(pki.ca_cert))
        assert code == 1, output
        assert "UNAVAILABLE" in output
        code, output = await probe(target)
        assert code == 1, output


async def test_unreadable_certificate_is_a_usage_error(tmp_path: Path) -> None:
    code, output = await probe("localhost:1", "--ca-file", str(tmp_path / "missing.pem"))
    assert code == 2
    assert "missing.pem" in output
    code, output = await probe("localhost:1", "--cert-file", str(tmp_path / "c.pem"))
    assert code == 2
    assert "go together" in output
