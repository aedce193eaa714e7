"""docker-compose.yml's ``secure`` profile follows the one policy, ``ROLE_ACCESS``.

No Docker engine runs here, so these tests prove what can be proven without one: the file is valid
Compose; each service logs in as the principal its job needs and is handed that login only; only
the init service is admin, and it applies the policy with ``tickwise security apply``; the broker's
security settings are the local secure broker's; the broker's entrypoint formats storage with the
admin's SCRAM login read from its secret and refuses example passwords.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tickwise.streams.checkpoint import KEY_FILE_ENV, checkpoint_key
from tickwise.streams.config import WatchConfig
from tickwise.streams.live.broker import SecureLocalBroker
from tickwise.streams.live.security import (
    ADMIN,
    MECHANISM,
    PRINCIPALS,
    ROLE_ACCESS,
    WATCH_APP,
    acl_bindings,
)
from tickwise.streams.live.security_cli import CredentialsError, check_credentials, write_secrets

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
KAFKA_DIR = ROOT / "docker" / "kafka-secure"
BOOTSTRAP = "kafka-secure:19092"
CHECKPOINT_SECRET = "tickwise_checkpoint_key"
# what each tickwise sub-command run in the profile must log in as
COMMAND_PRINCIPAL = {"worker": "worker", "feed": "feed", "watch": "watch", "security": ADMIN}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def secure_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if "secure" in svc.get("profiles", [])
    }


def tickwise_services() -> dict[str, dict[str, Any]]:
    services = secure_services()
    ours = {n: s for n, s in services.items() if s.get("image") == "tickwise:local"}
    assert set(services) - set(ours) == {"kafka-secure"}, "every other service runs tickwise"
    return ours


def login_secret(svc: dict[str, Any]) -> str:
    """The service's one login secret; a worker also holds the checkpoint key, nothing else."""
    secrets = set(svc["secrets"])
    if svc["command"][1] == "worker":
        assert CHECKPOINT_SECRET in secrets
        secrets.remove(CHECKPOINT_SECRET)
    (secret,) = secrets
    return secret


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def test_every_secure_service_logs_in_as_the_principal_its_job_needs() -> None:
    services = tickwise_services()
    assert {s["command"][1] for s in services.values()} == set(COMMAND_PRINCIPAL)
    for name, svc in services.items():
        env = svc["environment"]
        principal = env["TICKWISE_SASL_USERNAME"]
        assert principal in PRINCIPALS
        assert principal == COMMAND_PRINCIPAL[svc["command"][1]], name
        # the password comes from the one login secret it is handed, never from the compose file
        assert not any("PASSWORD" in key for key in env), name
        assert env["TICKWISE_CREDENTIALS_FILE"] == f"/run/secrets/{login_secret(svc)}"
        command = svc["command"]
        assert command[command.index("--bootstrap-servers") + 1] == BOOTSTRAP, name


def test_only_the_init_service_is_admin_and_it_applies_the_policy() -> None:
    admins = [
        name
        for name, svc in tickwise_services().items()
        if svc["environment"]["TICKWISE_SASL_USERNAME"] == ADMIN
    ]
    assert admins == ["security-init"]
    init = secure_services()["security-init"]
    assert init["command"][:3] == ["tickwise", "security", "apply"]
    assert init["depends_on"]["kafka-secure"]["condition"] == "service_healthy"
    for name, svc in tickwise_services().items():
        if name != "security-init":
            assert svc["depends_on"] == {
                "security-init": {"condition": "service_completed_successfully"}
            }, "no role starts before its login and ACLs exist"


def test_each_service_gets_its_own_login_and_nobody_elses() -> None:
    files = {name: spec["file"] for name, spec in compose()["secrets"].items()}
    for name, svc in tickwise_services().items():
        principal = svc["environment"]["TICKWISE_SASL_USERNAME"]
        expected = "credentials.json" if principal == ADMIN else f"{principal}.json"
        assert files[login_secret(svc)] == f"./secrets/{expected}", name
    broker = secure_services()["kafka-secure"]
    assert [files[s] for s in broker["secrets"]] == ["./secrets/admin.json"]
    # the roles the worker and the feed log in as do their jobs under ROLE_ACCESS
    assert "ticks.raw" in ROLE_ACCESS["feed"][1]
    assert "ticks.raw" not in ROLE_ACCESS["reader"][0] + ROLE_ACCESS["feed"][0]


def test_the_broker_is_configured_like_the_local_secure_broker(tmp_path: Path) -> None:
    broker = secure_services()["kafka-secure"]
    assert broker["image"] == compose()["services"]["kafka"]["image"], "one Kafka version"
    assert broker["entrypoint"] == ["/bin/bash", "/opt/tickwise/entrypoint.sh"]
    assert "./docker/kafka-secure:/opt/tickwise:ro" in broker["volumes"]
    ours = properties((KAFKA_DIR / "server.properties").read_text())
    local = SecureLocalBroker(9, tmp_path / "local")
    local_props = properties(local._write_configs(controller_port=10).read_text())
    for key in (
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
        "super.users",
        "sasl.enabled.mechanisms",
        "sasl.mechanism.inter.broker.protocol",
        "sasl.mechanism.controller.protocol",
        "listener.name.controller.sasl.enabled.mechanisms",
        "auto.create.topics.enable",
    ):
        assert ours[key] == local_props[key], key
    assert ours["allow.everyone.if.no.acl.found"] == "false"
    assert ours["sasl.enabled.mechanisms"] == MECHANISM
    protocols = dict(p.split(":") for p in ours["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener without a login"
    assert not any("password" in v for v in ours.values()), "no secret in the committed config"


def test_generated_secrets_cover_every_principal_one_file_each(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    creds = write_secrets(directory)
    assert set(creds) == set(PRINCIPALS)
    check_credentials(creds)
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    for principal in PRINCIPALS:
        assert json.loads((directory / f"{principal}.json").read_text()) == {
            principal: creds[principal]
        }
    assert write_secrets(directory) == creds, "generated once, kept afterwards"


def test_the_worker_signs_checkpoints_with_the_generated_key(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    write_secrets(directory)
    key_file = directory / "checkpoint.key"
    key = key_file.read_bytes()
    assert oct(key_file.stat().st_mode & 0o777) == "0o644", "readable by the container's user"
    assert checkpoint_key(environ={KEY_FILE_ENV: str(key_file)}) == key.strip()
    write_secrets(directory)
    assert key_file.read_bytes() == key, "generated once, kept afterwards"
    assert compose()["secrets"][CHECKPOINT_SECRET]["file"] == "./secrets/checkpoint.key"
    workers = [s for s in tickwise_services().values() if s["command"][1] == "worker"]
    assert workers
    for svc in workers:
        assert svc["environment"][KEY_FILE_ENV] == f"/run/secrets/{CHECKPOINT_SECRET}"


def test_the_example_lists_every_principal_and_is_refused() -> None:
    example = json.loads((KAFKA_DIR / "credentials.example.json").read_text())
    assert set(example) == set(PRINCIPALS)
    with pytest.raises(CredentialsError, match="placeholder"):
        check_credentials(example)


def _run_entrypoint(tmp_path: Path, admin_file: Path) -> subprocess.CompletedProcess[str]:
    """Run the broker's entrypoint with stand-in Kafka scripts that record their arguments."""
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for tool in ("kafka-storage.sh", "kafka-server-start.sh"):
        script = home / "bin" / tool
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{tool}.args"\n')
        script.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_HOME": str(home),
        "CLUSTER_ID": "jLOxlHx47qq5n8GW6Wohwg",
        "TICKWISE_KAFKA_TEMPLATE": str(KAFKA_DIR / "server.properties"),
        "TICKWISE_ADMIN_FILE": str(admin_file),
        "TICKWISE_KAFKA_WORKDIR": str(tmp_path / "work"),
    }
    return subprocess.run(
        ["bash", str(KAFKA_DIR / "entrypoint.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_broker_entrypoint_formats_with_the_admin_scram_login(tmp_path: Path) -> None:
    creds = write_secrets(tmp_path / "secrets")
    password = creds[ADMIN]
    result = _run_entrypoint(tmp_path, tmp_path / "secrets" / "admin.json")
    assert result.returncode == 0, result.stderr
    fmt = (tmp_path / "kafka-storage.sh.args").read_text().splitlines()
    config = str(tmp_path / "work" / "server.properties")
    assert fmt[:2] == ["format", "--ignore-formatted"]
    assert fmt[fmt.index("--config") + 1] == config
    assert fmt[fmt.index("--add-scram") + 1] == f"{MECHANISM}=[name={ADMIN},password={password}]"
    assert (tmp_path / "kafka-server-start.sh.args").read_text().split() == [config]
    props = properties(Path(config).read_text())
    jaas = props["listener.name.internal.scram-sha-512.sasl.jaas.config"]
    assert f'username="{ADMIN}" password="{password}"' in jaas
    assert oct(Path(config).stat().st_mode & 0o777) == "0o600", "it holds the admin password"


def test_the_broker_entrypoint_refuses_example_or_missing_passwords(tmp_path: Path) -> None:
    example = tmp_path / "admin.json"
    example.write_text(json.dumps({ADMIN: "change-me-admin-password"}))
    refused = _run_entrypoint(tmp_path, example)
    assert refused.returncode != 0 and "admin" in refused.stderr
    missing = _run_entrypoint(tmp_path, tmp_path / "nowhere.json")
    assert missing.returncode != 0 and "tickwise security secrets" in missing.stderr
    assert not (tmp_path / "kafka-storage.sh.args").exists(), "nothing formatted"


def test_the_compose_file_is_valid_with_and_without_the_secure_profile() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose here; CI's .ci/validate-compose.sh installs and runs it")
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "validate-compose.sh"), str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    profiles = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "--profiles"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "secure" in profiles.stdout.split()


def test_only_the_worker_may_read_and_write_the_checkpoint_topic() -> None:
    # checkpoints are the worker's own state: it reads and writes them, and no role's job does
    from confluent_kafka.admin import AclOperation, ResourceType

    from tickwise.schemas.topics import Topics

    name = Topics("desk1.").checkpoints
    granted = {
        (b.principal, b.operation)
        for b in acl_bindings("desk1.", "tickwise")
        if b.restype == ResourceType.TOPIC and b.name == name
    }
    worker = {("User:worker", op) for op in (AclOperation.READ, AclOperation.WRITE)}
    assert worker <= granted
    assert {principal for principal, _ in granted} == {"User:worker"}


def test_the_watchtower_gets_what_it_reads_and_writes_only_alerts_and_control() -> None:
    from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

    from tickwise.schemas.topics import Topics

    topics = Topics("desk1.")
    granted = {
        (b.restype, b.name, b.resource_pattern_type, b.operation)
        for b in acl_bindings("desk1.", "tickwise-desk1")
        if b.principal == "User:watch"
    }
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    read, write = AclOperation.READ, AclOperation.WRITE

    def on(op: AclOperation, restype: ResourceType = topic) -> set[str]:
        return {name for t, name, _, o in granted if t == restype and o == op}

    # what app.py consumes, and what it sends (alerts; control for the anomaly policies)
    own = f"desk1.{WATCH_APP}-"
    consumed = {topics.raw, topics.decisions, topics.audit, topics.control, topics.registry}
    assert on(read) == consumed | {own}
    assert on(write) == {topics.alerts, topics.control, own}
    # faust creates its changelogs and leader topic under its app id, and nothing else
    assert on(AclOperation.CREATE) == {own}
    assert (topic, own, prefixed, AclOperation.CREATE) in granted
    assert WatchConfig().group_id == WATCH_APP, "the app id the ACLs name"
    # its own consumer group; the workers' group it may only describe (members, offsets)
    assert (group, f"desk1.{WATCH_APP}", prefixed, read) in granted
    assert on(AclOperation.DESCRIBE, group) == {"tickwise-desk1"}
    assert (group, "tickwise-desk1", literal, AclOperation.DESCRIBE) in granted
    assert not any(o == AclOperation.ALL for *_, o in granted)
    assert not on(read, group) - {f"desk1.{WATCH_APP}"}
