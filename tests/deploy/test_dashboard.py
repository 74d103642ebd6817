"""The Grafana dashboard charts the metrics the services export, by the labels they carry.

The metric definitions are read from ``mediagen/scaffold/metrics.py`` itself, so a
renamed metric or label fails here instead of leaving a panel silently empty.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.manifests import ROOT

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
METRICS_SOURCE = ROOT / "mediagen" / "scaffold" / "metrics.py"
# Labels every scraped series gets from Prometheus, and the histogram bucket bound.
SCRAPE_LABELS = {"instance", "job", "namespace", "pod"}
SAMPLE_SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count")}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Our own metrics, and the gRPC server metrics under their grpc-prometheus names.
METRIC_NAME = re.compile(r"\b(?:mediagen|grpc_server)_[a-z_]+\b")


def exported() -> dict[str, set[str]]:
    """Sample name → label names, for every metric defined in the scaffold's metrics module."""
    samples: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(METRICS_SOURCE.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in SAMPLE_SUFFIXES:
            continue
        name = ast.literal_eval(node.args[0])
        labels = set(ast.literal_eval(node.args[2]))
        for suffix in SAMPLE_SUFFIXES[node.func.id]:
            family = name.removesuffix("_total") if node.func.id == "Counter" else name
            samples[family + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return samples


def expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_metric_definitions_are_read():
    samples = exported()
    grpc = {"grpc_type", "grpc_service", "grpc_method"}
    assert samples["grpc_server_started_total"] == grpc
    assert samples["grpc_server_handled_total"] == grpc | {"grpc_code"}
    assert samples["grpc_server_handling_seconds_bucket"] == grpc | {"le"}
    assert samples["mediagen_stage_duration_seconds_bucket"] == {"service", "stage", "le"}
    assert samples["mediagen_backend_queue_depth"] == {"backend"}


def test_every_query_names_exported_metrics_and_their_labels(dashboard):
    samples = exported()
    queries = list(expressions(dashboard))
    assert len(queries) >= 10
    for query in queries:
        assert query.count("(") == query.count(")"), query
        assert query.count("{") == query.count("}"), query
        used = set(METRIC_NAME.findall(query))
        assert used, query
        assert used <= set(samples), f"{query}: {used - set(samples)} not exported"
        allowed = set().union(*(samples[name] for name in used)) | SCRAPE_LABELS
        grouped = {
            label.strip()
            for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", query)
            for label in clause.split(",")
        }
        matched = set(re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!=|!~|=)", query))
        assert grouped | matched <= allowed, f"{query}: {(grouped | matched) - allowed} not a label"
        assert not (grouped & PROMQL_WORDS)


def test_every_exported_metric_is_charted(dashboard):
    charted = set(METRIC_NAME.findall(" ".join(expressions(dashboard))))
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in exported()}
    for family in families:
        assert any(name.startswith(family) for name in charted), f"{family} is on no panel"


def test_panels_do_not_overlap(dashboard):
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_run_stages_are_charted_in_pipeline_order(dashboard):
    stages = ["queued", "upload", "submit_to_start", "execute", "download", "store"]
    panel = next(p for p in dashboard["panels"] if p["title"].startswith("Where a run's time goes"))
    charted = [re.findall(r'stage="([a-z_]+)"', target["expr"])[0] for target in panel["targets"]]
    assert charted == stages


def test_the_variables_query_exported_labels(dashboard):
    samples = exported()
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
        assert found is not None, variable["definition"]
        metric, label = found.groups()
        assert label in samples[metric], variable["name"]
