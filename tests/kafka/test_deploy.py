"""deploy/ stays consistent with the code: no Docker engine or cluster runs here, so these checks
are what catches a renamed command, option or setting, a port that moved, or a version drift.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from safetrail.cli import app
from safetrail.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
K8S_FILES = sorted(f for f in (DEPLOY / "k8s").glob("*.yaml") if f.name != "kustomization.yaml")
MANIFESTS = [doc for f in K8S_FILES for doc in yaml.safe_load_all(f.read_text()) if doc]
# typer vendors its own click, so the group is duck-typed rather than checked against click.
COMMAND: Any = typer.main.get_command(app)


def _containers() -> list[tuple[str, list[str], dict[str, Any]]]:
    """(where, safetrail arguments, environment) of every safetrail container in deploy/."""
    found = []
    for name, svc in COMPOSE["services"].items():
        if str(svc.get("image", "")).startswith("safetrail"):
            found.append((f"compose:{name}", list(svc["command"]), dict(svc["environment"])))
    config = next(m for m in MANIFESTS if m["kind"] == "ConfigMap")["data"]
    for m in MANIFESTS:
        if m["kind"] == "Deployment":
            for c in m["spec"]["template"]["spec"]["containers"]:
                found.append((f"k8s:{m['metadata']['name']}", list(c["args"]), dict(config)))
    return found


CONTAINERS = _containers()


def test_when_deploy_is_read_then_every_safetrail_role_is_deployed_both_ways() -> None:
    roles = {(where.split(":")[0], args[0]) for where, args, _env in CONTAINERS}
    for way in ("compose", "k8s"):
        assert {(way, r) for r in ("process", "project", "serve")} <= roles


@pytest.mark.parametrize(("where", "args", "env"), CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_when_a_container_runs_safetrail_then_its_command_options_and_settings_exist(
    where: str, args: list[str], env: dict[str, Any]
) -> None:
    command = COMMAND.commands.get(args[0])
    assert command is not None, f"{where}: no command 'safetrail {args[0]}'"
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for arg in args[1:]:
        if arg.startswith("--"):
            assert arg in known, f"{where}: 'safetrail {args[0]}' has no option {arg}"
    fields = {f"SAFETRAIL_{name.upper()}" for name in Settings.model_fields}
    for name in env:
        assert name in fields, f"{where}: {name} is not a setting"


def test_when_ports_are_published_then_they_match_what_the_commands_listen_on() -> None:
    for where, args, _env in CONTAINERS:
        port = next(
            (args[i + 1] for i, a in enumerate(args) if a in ("--port", "--metrics-port")), None
        )
        if port is None or not where.startswith("k8s:"):
            continue
        name = where.split(":", 1)[1]
        deployment = next(
            m for m in MANIFESTS if m["kind"] == "Deployment" and m["metadata"]["name"] == name
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert int(port) in {p["containerPort"] for p in container["ports"]}, where
        annotation = deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
        assert annotation == port, where
    api = COMPOSE["services"]["api"]
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    assert api["command"][api["command"].index("--port") + 1] == "8000"


def test_when_compose_wires_services_then_addresses_point_at_its_own_services() -> None:
    env = COMPOSE["x-safetrail-env"]
    services = COMPOSE["services"]
    host, port = env["SAFETRAIL_KAFKA_BOOTSTRAP"].split(":")
    assert host in services
    assert (
        f"PLAINTEXT://{host}:{port}" == services[host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    clickhouse = re.match(r"http://[^@]*@([^:/]+):(\d+)/", env["SAFETRAIL_CLICKHOUSE_URL"])
    assert clickhouse is not None and clickhouse.group(1) in services
    # The settings validate as the services would load them (placeholders refused).
    Settings(
        kafka_bootstrap=env["SAFETRAIL_KAFKA_BOOTSTRAP"],
        clickhouse_url=env["SAFETRAIL_CLICKHOUSE_URL"],
        hmac_key="a-real-secret-of-enough-length",
        topic_partitions=int(env["SAFETRAIL_TOPIC_PARTITIONS"]),
    )


def test_when_versions_are_pinned_then_compose_runs_the_kafka_the_tests_run() -> None:
    pom = (DEPLOY / "local" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match is not None
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{match.group(1)}"


def test_when_k8s_manifests_are_read_then_every_resource_is_listed_and_labelled() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {f.name for f in K8S_FILES}
    for m in MANIFESTS:
        if m["kind"] == "Deployment":
            selector = m["spec"]["selector"]["matchLabels"]
            assert selector.items() <= m["spec"]["template"]["metadata"]["labels"].items()
            for c in m["spec"]["template"]["spec"]["containers"]:
                assert c["image"] == "safetrail"
                refs = {next(iter(r.values()))["name"] for r in c["envFrom"]}
                assert refs == {"safetrail-config", "safetrail-secrets"}


def test_when_a_cluster_id_is_drawn_then_it_never_reads_as_an_option(tmp_path: Path) -> None:
    # StorageTool takes the id as `-t ID`: an id starting with '-' (one draw in 64) used to
    # fail the format step ("--cluster-id: expected one argument") and the broker start.
    import base64
    import subprocess

    script = (DEPLOY / "local/kafka.sh").read_text()
    function = re.search(r"^cluster_id\(\) \{.*?^\}", script, re.S | re.M)
    assert function is not None
    draws = 400
    program = function.group(0) + f'\nfor i in $(seq {draws}); do cluster_id "$1/$i"; done\n'
    for i in range(1, draws + 1):
        (tmp_path / str(i)).mkdir()
    out = subprocess.run(  # noqa: S603 - bash with our own script text
        ["bash", "-c", program, "bash", str(tmp_path)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(out) == draws
    for cluster_id in out:
        assert not cluster_id.startswith("-"), cluster_id
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    # Kept per state directory: a restart joins the same cluster.
    again = subprocess.run(  # noqa: S603
        ["bash", "-c", program, "bash", str(tmp_path)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert again == out
