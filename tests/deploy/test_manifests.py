"""The Kubernetes overlays render, validate against the Kubernetes schemas, and say what the README says.

Validation is strict (an unknown field is an error, so a typo cannot pass as an
ignored field) against the oldest Kubernetes release the manifests need (native
sidecars, the preStop sleep action) and against the newest the schemas cover.
cert-manager's kinds (the mTLS component) are custom resources the Kubernetes schemas do
not hold: they are checked here instead, field by field, against cert-manager.io/v1's
required fields and the fields it knows (:func:`check_cert_manager`).
"""

from __future__ import annotations

import pytest
from kubernetes_validate import utils as kubernetes_schemas  # type: ignore[import-untyped]

from tests.deploy.manifests import (
    KUBERNETES,
    MTLS_OVERLAYS,
    OVERLAYS,
    Obj,
    container_env,
    named,
    of_kind,
    pod_spec,
    selects,
    sidecars,
    target_of,
)

OLDEST_KUBERNETES = "1.33"
SERVICES = {"gateway": 50051, "generator": 50052, "storage": 50053}
PEAK_RSS_MIB = 110  # the largest peak of any service in the README's benchmarks
MIB = {"Mi": 1, "Gi": 1024}


def mebibytes(quantity: str) -> float:
    return float(quantity[:-2]) * MIB[quantity[-2:]]


CERT_MANAGER = "cert-manager.io/v1"
# cert-manager.io/v1 spec fields (its CRDs' OpenAPI schemas), and the ones a resource must have.
CERTIFICATE_FIELDS = {
    "additionalOutputFormats", "commonName", "dnsNames", "duration", "emailAddresses",
    "encodeUsagesInRequest", "ipAddresses", "isCA", "issuerRef", "keystores", "literalSubject",
    "nameConstraints", "otherNames", "privateKey", "renewBefore", "renewBeforePercentage",
    "revisionHistoryLimit", "secretName", "secretTemplate", "signatureAlgorithm", "subject", "uris", "usages",
}  # fmt: skip
KEY_USAGES = {
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
}  # fmt: skip
ISSUER_KINDS = {"acme", "ca", "selfSigned", "vault", "venafi"}


def check_cert_manager(obj: Obj) -> None:
    """A cert-manager Issuer or Certificate has the fields cert-manager requires, and no others."""
    assert obj["apiVersion"] == CERT_MANAGER, obj["apiVersion"]
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}
    assert obj["metadata"]["name"]
    assert obj["metadata"]["namespace"]
    spec = obj["spec"]
    if obj["kind"] == "Issuer":
        (kind,) = spec
        assert kind in ISSUER_KINDS
        if kind == "ca":
            assert set(spec["ca"]) <= {
                "secretName",
                "crlDistributionPoints",
                "ocspServers",
                "issuingCertificateURLs",
            }
            assert spec["ca"]["secretName"]
        return
    assert obj["kind"] == "Certificate", obj["kind"]
    assert set(spec) <= CERTIFICATE_FIELDS, set(spec) - CERTIFICATE_FIELDS
    assert spec["secretName"]  # required by the CRD, as is the issuer's name
    assert spec["issuerRef"]["name"]
    assert set(spec["issuerRef"]) <= {"name", "kind", "group"}
    assert set(spec.get("usages", [])) <= KEY_USAGES
    assert set(spec.get("privateKey", {})) <= {"algorithm", "encoding", "rotationPolicy", "size"}
    assert spec.get("privateKey", {}).get("algorithm", "RSA") in {"RSA", "ECDSA", "Ed25519"}
    for duration in ("duration", "renewBefore"):
        if duration in spec:
            assert str(spec[duration])[-1] in "hms", duration  # a Go duration


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, kubernetes_schemas.latest_version()])
def test_every_object_validates_against_the_kubernetes_schemas(rendered, overlay, version):
    kinds = set()
    for obj in rendered[overlay]:
        if obj["apiVersion"].startswith("cert-manager.io/"):
            check_cert_manager(obj)
        else:
            kubernetes_schemas.validate(obj, version, strict=True)
        kinds.add(obj["kind"])
    assert kinds >= {"Namespace", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret"}
    if overlay in MTLS_OVERLAYS:
        assert kinds >= {"Certificate", "Issuer"}


def test_the_cert_manager_check_refuses_what_cert_manager_would():
    good = {
        "apiVersion": CERT_MANAGER,
        "kind": "Certificate",
        "metadata": {"name": "storage", "namespace": "mediagen"},
        "spec": {"secretName": "s", "issuerRef": {"name": "ca"}, "usages": ["client auth"]},
    }
    check_cert_manager(good)
    for broken in (
        {"secretName": "s"},  # no issuerRef
        {"issuerRef": {"name": "ca"}},  # no secretName
        {"secretName": "s", "issuerRef": {"name": "ca"}, "dnsName": ["x"]},  # a typo
        {"secretName": "s", "issuerRef": {"name": "ca"}, "usages": ["client-auth"]},
    ):
        with pytest.raises((AssertionError, KeyError)):
            check_cert_manager({**good, "spec": broken})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_is_probed_over_grpc_health_and_sized_from_its_measured_memory(rendered, overlay):
    for name, port in SERVICES.items():
        deployment = named(rendered[overlay], "Deployment", name)
        (container,) = pod_spec(deployment)["containers"]
        assert target_of(container) == name
        assert {p["containerPort"] for p in container["ports"]} >= {port}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if overlay in MTLS_OVERLAYS:
                # gRPC probes cannot speak TLS: the health-check command, with the pod's certificate.
                assert "grpc" not in container[probe], f"{name} {probe}"
                assert container[probe]["exec"]["command"] == mtls_health_command(port), f"{name} {probe}"
            else:
                assert container[probe]["grpc"] == {"port": port}, f"{name} {probe}"
        resources = container["resources"]
        assert mebibytes(resources["requests"]["memory"]) >= PEAK_RSS_MIB
        assert mebibytes(resources["limits"]["memory"]) >= 2 * PEAK_RSS_MIB
        assert set(resources["limits"]) >= {"cpu", "memory"}


TLS_DIR = "/etc/mediagen/tls"


def mtls_health_command(port: int) -> list[str]:
    return [
        "python", "-m", "mediagen.stack.healthcheck", f"localhost:{port}",
        "--ca-file", f"{TLS_DIR}/ca.crt",
        "--cert-file", f"{TLS_DIR}/tls.crt",
        "--key-file", f"{TLS_DIR}/tls.key",
    ]  # fmt: skip


@pytest.mark.parametrize("overlay", sorted(MTLS_OVERLAYS))
def test_with_mtls_each_service_serves_and_calls_with_its_certificate_and_knows_callers_by_it(
    rendered, overlay
):
    objects = rendered[overlay]
    certificates = {c["spec"]["secretName"]: c for c in of_kind(objects, "Certificate")}
    issuers = {i["metadata"]["name"] for i in of_kind(objects, "Issuer")}
    gateway_env = container_env(objects, pod_spec(named(objects, "Deployment", "gateway"))["containers"][0])
    for name in SERVICES:
        spec = pod_spec(named(objects, "Deployment", name))
        (container,) = spec["containers"]
        env = container_env(objects, container)
        prefix = f"MEDIAGEN_{name.upper()}_"
        # Certificate names, not tokens: with a token set, the token would name the caller.
        assert not {key for key in env if key.endswith("_TOKEN")}, name
        assert env[f"{prefix}TLS_CERT_FILE"] == f"{TLS_DIR}/tls.crt"
        assert env[f"{prefix}TLS_KEY_FILE"] == f"{TLS_DIR}/tls.key"
        assert env[f"{prefix}TLS_CLIENT_CA_FILE"] == f"{TLS_DIR}/ca.crt"
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == TLS_DIR]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        certificate = certificates[volume["secret"]["secretName"]]
        assert "subPath" not in mount  # a subPath mount would never see a renewed certificate
        assert certificate["spec"]["issuerRef"]["name"] in issuers
        assert certificate["spec"]["commonName"] == name
        assert {"server auth", "client auth"} <= set(certificate["spec"]["usages"])
        assert "localhost" in certificate["spec"]["dnsNames"]  # what the probe dials
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsUser"]
        if name == "gateway":
            assert env[f"{prefix}ADMIN_CALLERS"]
            for peer in ("generator", "storage"):
                host = gateway_env[f"{prefix}{peer.upper()}_TARGET"].removeprefix("dns:///").rsplit(":", 1)[0]
                peer_volume = pod_spec(named(objects, "Deployment", peer))["volumes"]
                (peer_secret,) = [v["secret"]["secretName"] for v in peer_volume if "secret" in v]
                assert host in certificates[peer_secret]["spec"]["dnsNames"], peer
            for key in ("CA", "CERT", "KEY"):
                assert env[f"{prefix}PEER_{key}_FILE"].startswith(TLS_DIR)
        else:
            # The gateway's certificate names it "gateway": its peers let it create runs for its callers.
            assert env[f"{prefix}ADMIN_CALLERS"] == "gateway"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_waits_for_the_prestop_pause_and_the_grace_period(rendered, overlay):
    for name in SERVICES:
        deployment = named(rendered[overlay], "Deployment", name)
        spec = pod_spec(deployment)
        (container,) = spec["containers"]
        grace = float(container_env(rendered[overlay], container)[f"MEDIAGEN_{name.upper()}_GRACE_SECONDS"])
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert spec["terminationGracePeriodSeconds"] > pause + grace, name
        # Health answers NOT_SERVING while draining: liveness must not kill a pod that drains.
        liveness = container["livenessProbe"]
        assert (
            liveness["periodSeconds"] * liveness["failureThreshold"] > spec["terminationGracePeriodSeconds"]
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_and_more_than_one_replica(rendered, overlay):
    objects = rendered[overlay]
    budgets = of_kind(objects, "PodDisruptionBudget")
    for deployment in of_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["replicas"] >= 2
        matching = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(matching) == 1, deployment["metadata"]["name"]
        assert matching[0]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_resolves_every_replica_of_its_peers_through_headless_services(rendered, overlay):
    objects = rendered[overlay]
    (gateway,) = pod_spec(named(objects, "Deployment", "gateway"))["containers"]
    env = container_env(objects, gateway)
    for peer in ("generator", "storage"):
        target = env[f"MEDIAGEN_GATEWAY_{peer.upper()}_TARGET"]
        assert target.startswith("dns:///"), target
        host, port = target.removeprefix("dns:///").rsplit(":", 1)
        service = named(objects, "Service", host)
        assert service["spec"]["clusterIP"] == "None"
        labels = named(objects, "Deployment", peer)["spec"]["template"]["metadata"]["labels"]
        assert selects({"matchLabels": service["spec"]["selector"]}, labels)
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}


def ingress_from_outside(policy: Obj) -> set[int]:
    """Ports a policy opens to clients outside the namespace (no `from`, or a namespaceSelector)."""
    ports: set[int] = set()
    for rule in policy["spec"].get("ingress", []):
        peers = rule.get("from")
        if peers is None or any("namespaceSelector" in peer or "ipBlock" in peer for peer in peers):
            ports |= {p["port"] for p in rule.get("ports", [])} or {0}
    return ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_takes_calls_from_outside_the_namespace(rendered, overlay):
    objects = rendered[overlay]
    policies = of_kind(objects, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny, "no default-deny ingress policy"
    metrics_ports = {9101, 9102, 9103}
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        opened: set[int] = set()
        for policy in policies:
            if selects(policy["spec"]["podSelector"], labels):
                opened |= ingress_from_outside(policy)
        expected = {SERVICES[name]} if name == "gateway" else set()
        assert opened - metrics_ports == expected, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_the_operator_and_every_reference_resolves(rendered, overlay):
    objects = rendered[overlay]
    for deployment in of_kind(objects, "Deployment"):
        for container in pod_spec(deployment)["containers"]:
            container_env(objects, container)  # raises on a dangling secretKeyRef
    for example in (KUBERNETES / "overlays" / overlay).glob("*.env.example"):
        values = [line.split("=", 1)[1] for line in example.read_text().splitlines() if "=" in line]
        assert values, example.name
        assert all(value.startswith("REPLACE_") for value in values), example.name
        assert not example.with_suffix("").exists() or "*.env" in (KUBERNETES / ".gitignore").read_text()
    assert not list((KUBERNETES / "base").rglob("*.env*"))


def test_the_dev_generators_each_run_the_simulator_beside_them(rendered):
    generator = named(rendered["dev"], "Deployment", "generator")
    (sim,) = sidecars(generator)
    assert target_of(sim) == "comfyui-sim"
    (container,) = pod_spec(generator)["containers"]
    assert container_env(rendered["dev"], container)["MEDIAGEN_GENERATOR_COMFYUI_URLS"] == (
        f"http://127.0.0.1:{sim['ports'][0]['containerPort']}"
    )


def test_each_gpu_generator_is_attached_to_one_comfyui_holding_one_gpu(rendered):
    generator = named(rendered["gpu"], "Deployment", "generator")
    (comfyui,) = sidecars(generator)
    assert comfyui["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert comfyui["startupProbe"]["httpGet"]["path"] == "/system_stats"
    (container,) = pod_spec(generator)["containers"]
    urls = container_env(rendered["gpu"], container)["MEDIAGEN_GENERATOR_COMFYUI_URLS"].split(",")
    assert urls == [f"http://127.0.0.1:{comfyui['ports'][0]['containerPort']}"]
    assert "nvidia.com/gpu" not in str(container["resources"])
