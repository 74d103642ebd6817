"""Prometheus metrics shared by the three services.

RPC counts, latencies and status codes are recorded by the scaffold for every
call, under the grpc-prometheus names; services add their own figures (bytes
streamed, queue depth, job outcomes, stage durations) through the objects
defined here so every name carries the same ``mediagen_`` prefix and
``service`` label.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# gRPC server metrics under the grpc-prometheus names and labels, which the ready-made Grafana
# gRPC dashboards chart (see the README's "Metrics"); calls in flight are started - handled.
# Label lists are literal so the dashboard test can read them from this file.
RPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server",
    ["grpc_type", "grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, whatever their status code",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Wall time of RPCs until the server finished them, streams included",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
RPC_CALLS_BY_CALLER = Counter(
    "mediagen_rpc_calls_by_caller_total",
    "Completed RPCs by caller (configured names, else 'other') and status code",
    ["service", "caller", "code"],
)
BYTES_STREAMED = Counter(
    "mediagen_bytes_streamed_total",
    "Media bytes moved, by direction",
    ["service", "direction"],
)
JOB_OUTCOMES = Counter(
    "mediagen_jobs_total",
    "Finished jobs by outcome",
    ["service", "outcome"],
)
JOB_DURATION = Histogram(
    "mediagen_job_duration_seconds",
    "Duration of jobs by phase",
    ["service", "phase"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
STAGE_DURATION = Histogram(
    "mediagen_stage_duration_seconds",
    "Time one run spent in each stage: queued (durable queue), upload (inputs to the backend), "
    "submit_to_start, execute, download (from the backend), store (one media into storage)",
    ["service", "stage"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
QUEUE_DEPTH = Gauge(
    "mediagen_backend_queue_depth",
    "Jobs queued or running on a backend",
    ["backend"],
)
BACKEND_UP = Gauge("mediagen_backend_up", "1 when the backend answers", ["backend"])


class MetricsEndpoint:
    """The /metrics HTTP listener of one service process."""

    def __init__(self, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
