"""Assemble the generator from its settings: templates, backends, servicer, scaffold spec.

``build_spec`` is the one path used by ``python -m generator_service`` and by tests, so what is
tested is what runs. A broken template, an impossible configuration or a managed ComfyUI that
cannot start fails here, at start-up.

Shutdown, once the grace period is over: managed ComfyUIs are stopped first (SIGTERM, then SIGKILL
after ``comfyui_stop_seconds``), which ends whatever they run, so no job waits on a node that
ignores interrupts; then the jobs' clean-ups get ``cancel_wait_seconds`` (on attached backends
they cancel prompts) before they are abandoned to the journal; then the rest is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from pathlib import Path

from generator_service.backends import Backend, BackendPool
from generator_service.job_files import JobFiles
from generator_service.jobs import JobLimits
from generator_service.journal import FileJournal, Journal, JournalUnavailable
from generator_service.nats_journal import NatsJournal
from generator_service.process import ManagedProcess
from generator_service.providers.config import build_remote
from generator_service.providers.templates import PACKAGED_DIR as PROVIDER_TEMPLATES
from generator_service.providers.templates import load_provider_templates
from generator_service.servicer import GeneratorServicer
from generator_service.settings import GeneratorSettings
from generator_service.templates import PACKAGED_DIR, load_templates
from generator_service.tracking import FollowLimits
from generator_service.wire import encode_event
from mediagen.ports import free_port
from mediagen.scaffold import ServiceSpec
from mediagen.scaffold.codecs import with_codecs
from mediagen.scaffold.health import HealthMonitor
from mediagen.v1 import generator_pb2, generator_pb2_grpc

log = logging.getLogger("mediagen.generator.app")
SERVICE_NAME = generator_pb2.DESCRIPTOR.services_by_name["GeneratorService"].full_name


async def build_spec(settings: GeneratorSettings) -> ServiceSpec:
    dirs = [PACKAGED_DIR] + ([settings.templates_dir] if settings.templates_dir else [])
    templates = load_templates(*dirs)
    temporary = _temporary_data_dir(settings)

    async def remove_temporary() -> None:
        if temporary is not None:
            await asyncio.to_thread(shutil.rmtree, temporary, True)

    journal = await _journal(settings)
    try:
        comfy = _backends(settings, temporary, journal)
        remote = build_remote(settings.backends, settings.http_timeout)
        kinds = {backend.kind for backend in remote}
        providers = {n: t for n, t in load_provider_templates(PROVIDER_TEMPLATES).items() if t.kind in kinds}
        pool = BackendPool([*comfy, *remote], settings.max_queue_per_backend)
        servicer = GeneratorServicer(
            settings, pool, templates if comfy else {}, job_limits(settings), providers
        )
        journal.on_orphans = pool.recover_orphans
        await pool.start()
    except BaseException:
        await journal.close()
        await remove_temporary()
        raise

    def on_health(monitor: HealthMonitor) -> None:
        pool.monitor = monitor

    return ServiceSpec(
        name="generator",
        servicers=[
            (
                SERVICE_NAME,
                with_codecs(
                    generator_pb2_grpc.add_GeneratorServiceServicer_to_server,
                    "Generate",
                    response_serializer=encode_event,
                ),
                servicer,
            )
        ],
        dependency_checks={"comfyui": pool.health_check},
        on_shutdown=[pool.stop_processes, servicer.shutdown, pool.close, journal.close, remove_temporary],
        on_health=on_health,
    )


def _temporary_data_dir(settings: GeneratorSettings) -> Path | None:
    """Managed mode without a data dir: one of our own, removed when the generator stops."""
    if settings.comfyui_command and settings.comfyui_data_dir is None:
        return Path(tempfile.mkdtemp(prefix="mediagen-comfyui-"))
    return None


def job_limits(settings: GeneratorSettings) -> JobLimits:
    follow = FollowLimits(
        watchdog_quiet=settings.watchdog_quiet_seconds,
        poll_interval=settings.poll_interval,
        backend_lost=settings.backend_lost_seconds,
        history_retry=settings.history_retry_seconds,
        progress_interval=settings.progress_interval_seconds,
    )
    return JobLimits(
        follow=follow,
        cancel_wait=settings.cancel_wait_seconds,
        chunk_size=settings.chunk_size,
        output_prefix=settings.output_prefix,
        connect_wait=settings.backend_lost_seconds,
    )


async def _journal(settings: GeneratorSettings) -> Journal:
    """NATS when configured (shared by the replicas); else the configured state directory, or the
    default one, or a temporary one if that is not writable."""
    if settings.nats_url:
        shared = NatsJournal(
            settings.nats_url,
            settings.nats_prefix,
            settings.lease_seconds,
            settings.nats_replicas,
            tls=settings.nats_tls(),
        )
        await shared.start()
        return shared
    try:
        return FileJournal(settings.journal_dir)
    except JournalUnavailable as exc:
        if settings.state_dir is not None:
            raise
        fallback = Path(tempfile.gettempdir()) / f"mediagen-generator-state-{os.getuid()}"
        log.warning("%s; using %s (set a state dir that outlives the process)", exc, fallback)
        return FileJournal(fallback)


def _backends(settings: GeneratorSettings, temporary: Path | None, journal: Journal) -> list[Backend]:
    def backend(name: str, url: str, process: ManagedProcess | None = None) -> Backend:
        return Backend(
            name,
            url,
            client_id_prefix=settings.client_id_prefix,
            http_timeout=settings.http_timeout,
            journal=journal,
            cancel_wait=settings.cancel_wait_seconds,
            process=process,
        )

    backends = [backend(f"comfyui-{i}", url) for i, url in enumerate(settings.urls)]
    root = settings.comfyui_data_dir or temporary
    if settings.comfyui_command and root is not None:
        for i in range(settings.comfyui_instances):
            port = settings.comfyui_base_port + i if settings.comfyui_base_port else free_port()
            name = f"managed-{i}"
            process = ManagedProcess(
                name,
                settings.comfyui_command,
                host=settings.comfyui_host,
                port=port,
                data_dir=root / str(i),
                files=JobFiles(root / str(i), settings.output_prefix),
                start_timeout=settings.comfyui_start_timeout,
                backoff=(settings.restart_backoff_initial, settings.restart_backoff_max),
                workdir=settings.comfyui_workdir,
                stop_wait=settings.comfyui_stop_seconds,
                instance=i,
            )
            backends.append(backend(name, process.url, process))
    journal.use_backends({backend.identity for backend in backends})
    return backends
