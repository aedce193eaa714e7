"""The secure profile on a real broker: each role can do its job and is refused everything else.

A broker of its own (SASL/SCRAM-SHA-512, StandardAuthorizer) is started for this module: the
session broker is PLAINTEXT. A failed start fails the tests, as for every Kafka test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from tickwise.schemas.quarantine import QuarantineRecord
from tickwise.schemas.ticks import CleanTick
from tickwise.schemas.topics import CATALOGUE, Topics
from tickwise.streams.cli import main
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.broker import SecureLocalBroker, ensure_jars, free_port
from tickwise.streams.live.feed import publish
from tickwise.streams.live.metrics import scrape
from tickwise.streams.live.reader import RangeReader, RangeReadError
from tickwise.streams.live.security import (
    ROLE_ACCESS,
    apply_policy,
    client_config,
    ensure_users,
)
from tickwise.streams.live.security_cli import write_secrets
from tickwise.streams.live.tap import read_values, spawn_watch, spawn_worker, stop_process
from tickwise.streams.sources import synthetic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PREFIX = "sec."
FAR_MS = 4 * 10**12  # a record time past anything written
NAMES = [spec.name for spec in CATALOGUE]
CREDS = "credentials.json"
COMPOSE_KAFKA = Path(__file__).resolve().parents[2] / "docker" / "kafka-secure"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    broker = SecureLocalBroker(free_port(), tmp_path_factory.mktemp("secure-kafka"), "1g")
    try:
        bootstrap = broker.start(timeout=180)
        admin = broker.client_config()
        create_topics(bootstrap, PREFIX, client_config=admin)
        apply_policy(bootstrap, admin, PREFIX)
        produce(bootstrap, admin, NAMES)  # something to read on every topic
        credentials = broker.credentials()
        wait_for_policy(bootstrap, credentials, PREFIX)
        yield bootstrap, credentials
    finally:
        broker.stop()


def wait_for_policy(bootstrap: str, credentials: dict[str, str], prefix: str) -> None:
    """Logins and ACLs reach the broker through the metadata log: wait until both apply."""
    deadline = time.monotonic() + 60
    for role, (_, writes) in ROLE_ACCESS.items():
        login = client_config(role, credentials[role])
        while writes and not produce(bootstrap, login, [writes[0]], prefix):
            assert time.monotonic() < deadline, f"the {role} login or ACLs never applied"
            time.sleep(1)


def produce(
    bootstrap: str, client: dict[str, str], names: list[str], prefix: str = PREFIX
) -> set[str]:
    """Produce one message to each topic; return the topics that accepted it."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10_000, **client})
    accepted: set[str] = set()

    def on_delivery(err: KafkaError | None, msg: object) -> None:
        if err is None:
            accepted.add(msg.topic()[len(prefix) :])  # type: ignore[attr-defined]

    for name in names:
        producer.produce(f"{prefix}{name}", b"{}", b"k", on_delivery=on_delivery)
    producer.flush(30)
    return accepted


def readable(bootstrap: str, client: dict[str, str], group: str, expected: set[str]) -> set[str]:
    """Read every topic from the start (each holds a message); return the topics read.

    Stops 3 s after ``expected`` was read: a topic the role may not read stays silent
    (librdkafka reports the authorization error once, not per topic)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            **client,
        }
    )
    c.assign(
        [
            TopicPartition(f"{PREFIX}{spec.name}", p, OFFSET_BEGINNING)
            for spec in CATALOGUE
            for p in range(spec.partitions)
        ]
    )
    read: set[str] = set()
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                read.add((msg.topic() or "")[len(PREFIX) :])
                if read >= expected:
                    deadline = min(deadline, time.monotonic() + 3.0)
            elif msg.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and not expected:
                deadline = min(deadline, time.monotonic() + 3.0)
    finally:
        c.close()
    return read


@pytest.mark.parametrize("role", sorted(ROLE_ACCESS))
def test_each_role_writes_and_reads_only_its_topics(
    secure: tuple[str, dict[str, str]], role: str
) -> None:
    bootstrap, credentials = secure
    client = client_config(role, credentials[role])
    reads, writes = ROLE_ACCESS[role]
    assert produce(bootstrap, client, NAMES) == set(writes)
    read = readable(bootstrap, client, f"{PREFIX}tickwise-{role}-test", set(reads))
    assert read == set(reads), "reads its inputs and nothing else (every topic holds a message)"


def test_a_wrong_password_is_refused(secure: tuple[str, dict[str, str]]) -> None:
    bootstrap, _ = secure
    assert produce(bootstrap, client_config("feed", "not-the-password"), ["ticks.raw"]) == set()


def test_credentials_file_is_private(secure: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    _, credentials = secure
    assert set(credentials) == {"admin", "worker", *ROLE_ACCESS}
    assert all(len(p) >= 16 for p in credentials.values())


def test_the_pipeline_runs_with_one_login_per_process(
    secure: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feed and worker each log in as themselves; raw = clean + quarantined, as without ACLs."""
    bootstrap, credentials = secure
    prefix = "sec2."
    admin = client_config("admin", credentials["admin"])
    create_topics(bootstrap, prefix, client_config=admin)
    apply_policy(bootstrap, admin, prefix)
    # a probe on a topic the worker does not read, so the pipeline's input stays clean
    deadline = time.monotonic() + 60
    while not produce(bootstrap, client_config("audit", credentials["audit"]), ["audit"], prefix):
        assert time.monotonic() < deadline, "the ACLs of the second prefix never applied"
        time.sleep(1)

    def login(role: str) -> None:
        monkeypatch.setenv("TICKWISE_SASL_USERNAME", role)
        monkeypatch.setenv("TICKWISE_SASL_PASSWORD", credentials[role])

    records = list(synthetic(seed=2, count=1500, bad_rate=0.02))
    bad = sum(1 for r in records if r.injected)
    topics = Topics(prefix)
    login("worker")
    # its own checkpoint directory: the app id is fixed (the ACLs name it), and a checkpoint
    # left in the user's default directory by an earlier run must not be resumed here
    worker = spawn_worker(
        bootstrap,
        prefix,
        "tickwise-secure",
        log_path=str(tmp_path / "w.log"),
        checkpoint_dir=str(tmp_path / "checkpoints"),
    )
    try:
        login("feed")
        assert publish(records, bootstrap, topics.raw) == len(records)
        login("worker")  # taps join `tickwise-tap-*` groups, inside the worker's app-id prefix
        clean = read_values(bootstrap, topics.clean, len(records) - bad, 120)
        quarantined = read_values(bootstrap, topics.quarantine, bad, 60)
    finally:
        stop_process(worker)
    assert len(clean) == len(records) - bad, (tmp_path / "w.log").read_text()[-2000:]
    assert len(quarantined) == bad
    assert all(CleanTick.model_validate_json(v) for _, v in clean)
    assert sorted(QuarantineRecord.model_validate_json(v).reason.value for _, v in quarantined) == (
        sorted(r.injected for r in records if r.injected)
    )


def test_security_apply_cli_sets_logins_and_acls(
    secure: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tickwise security apply` (the compose profile's init service) on a fresh prefix.

    The feed's password is rotated through the command: the new one works and the old one is
    refused, and the feed may write ``ticks.raw`` of the new prefix and nothing else there.
    """
    bootstrap, credentials = secure
    prefix = "sec3."
    rotated = {**credentials, "feed": secrets.token_urlsafe(18)}
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(rotated))
    monkeypatch.setenv("TICKWISE_SASL_USERNAME", "admin")
    monkeypatch.setenv("TICKWISE_CREDENTIALS_FILE", str(path))
    new_feed = client_config("feed", rotated["feed"])
    old_feed = client_config("feed", credentials["feed"])
    try:
        argv = ["security", "apply", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
        assert main(argv) == 0
        deadline = time.monotonic() + 60
        while not produce(bootstrap, new_feed, ["ticks.raw"], prefix):
            assert time.monotonic() < deadline, "the rotated login or the new ACLs never applied"
            time.sleep(1)
        assert produce(bootstrap, old_feed, ["ticks.raw"], prefix) == set()
        assert produce(bootstrap, new_feed, NAMES, prefix) == {"ticks.raw"}
        reader = client_config("reader", credentials["reader"])
        assert produce(bootstrap, reader, ["decisions", "audit"], prefix) == set()
    finally:
        # the module's other tests log in with the feed's first password
        ensure_users(bootstrap, client_config("admin", credentials["admin"]), credentials)
        deadline = time.monotonic() + 60
        while not produce(bootstrap, old_feed, ["ticks.raw"]):
            assert time.monotonic() < deadline, "the feed's first password never came back"
            time.sleep(1)


def test_replay_and_its_reader_log_in_as_the_role(
    secure: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`tickwise replay` reads and writes with the login of the environment, as every client.

    The worker's login reads the recorded ``ticks.clean`` and writes the copy's, in topics an
    admin made (it may create none); the feed's, which may read nothing, is refused with the
    topic named; the reader's may read the audit trail but not ``ticks.raw``, so replay-check
    fails loud there rather than checking nothing.
    """
    bootstrap, credentials = secure
    target = "sec4."
    admin = client_config("admin", credentials["admin"])
    create_topics(bootstrap, target, client_config=admin)
    apply_policy(bootstrap, admin, target)

    def login(role: str) -> None:
        monkeypatch.setenv("TICKWISE_SASL_USERNAME", role)
        monkeypatch.setenv("TICKWISE_SASL_PASSWORD", credentials[role])

    source = f"{PREFIX}ticks.clean"
    login("worker")
    deadline = time.monotonic() + 60
    while True:
        with RangeReader(bootstrap, metadata_timeout_s=10) as reader:
            try:
                recorded = sum(reader.watermarks(source, p)[1] for p in reader.partitions(source))
                copy = [
                    reader.watermarks(f"{target}ticks.clean", p)
                    for p in reader.partitions(f"{target}ticks.clean")
                ]
                break
            except (RangeReadError, KafkaException):
                assert time.monotonic() < deadline, "the ACLs of the copy's prefix never applied"
                time.sleep(1)
    assert recorded > 0 and all(high == 0 for _, high in copy)
    argv = ["replay", "--topic", "ticks.clean", "--topic-prefix", PREFIX, "--to-prefix", target]
    argv += ["--from", "0", "--to", str(FAR_MS), "--bootstrap-servers", bootstrap]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == (
        f"republished {recorded} records to {target}ticks.clean"
    )
    with RangeReader(bootstrap) as reader:
        copied = reader.read_times(f"{target}ticks.clean", 0, FAR_MS)
        assert sum(1 for msg in copied if msg.value() == b"{}") == recorded

    login("feed")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"'{source}'" in err and "uthoriz" in err, err

    login("reader")
    check = ["replay-check", "--topic-prefix", PREFIX, "--from", "0", "--to", str(FAR_MS)]
    assert main([*check, "--bootstrap-servers", bootstrap]) == 2
    err = capsys.readouterr().err
    assert f"{PREFIX}ticks.raw" in err and "uthoriz" in err, err


def _start_compose_broker(tmp: Path, admin_file: Path, ports: dict[str, int]) -> subprocess.Popen:
    """Run docker-compose's secure broker without Docker: the same config and entrypoint script.

    Only what Docker would provide is stood in for: Kafka's two launch scripts (the image's
    ``/opt/kafka/bin``) run the same Kafka version from the local broker's jars, and host names,
    ports and the log dir are made local.
    """
    libs, java = ensure_jars(), shutil.which("java") or "java"
    home = tmp / "kafka-home"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for tool, main_class in (
        ("kafka-storage.sh", "kafka.tools.StorageTool"),
        ("kafka-server-start.sh", "kafka.Kafka"),
    ):
        script = home / "bin" / tool
        script.write_text(f'#!/bin/sh\nexec {java} -Xmx512m -cp "{libs}/*" {main_class} "$@"\n')
        script.chmod(0o755)
    template = (COMPOSE_KAFKA / "server.properties").read_text()
    for old, new in (
        ("kafka-secure:", "127.0.0.1:"),
        ("localhost:", "127.0.0.1:"),
        ("://:", "://127.0.0.1:"),
        ("/tmp/kraft-combined-logs", str(tmp / "kraft-logs")),
    ):
        template = template.replace(old, new)
    for old_port, new_port in ports.items():
        template = template.replace(f":{old_port}", f":{new_port}")
    (tmp / "server.properties").write_text(template)
    env = {
        **os.environ,
        "KAFKA_HOME": str(home),
        "CLUSTER_ID": "jLOxlHx47qq5n8GW6Wohwg",
        "TICKWISE_KAFKA_TEMPLATE": str(tmp / "server.properties"),
        "TICKWISE_ADMIN_FILE": str(admin_file),
        "TICKWISE_KAFKA_WORKDIR": str(tmp / "work"),
    }
    with (tmp / "broker.out").open("ab") as out:
        return subprocess.Popen(
            ["bash", str(COMPOSE_KAFKA / "entrypoint.sh")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_answers(proc: subprocess.Popen, bootstrap: str, admin: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if (
                AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **admin})
                .list_topics(timeout=2)
                .brokers
            ):
                return
        except KafkaException:
            pass  # still starting: the probe is refused until the broker joined its quorum
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_the_compose_broker_with_security_init_enforces_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker-compose's secure broker config and entrypoint, then its init service's command.

    The admin login exists from the format step only; `tickwise security apply` creates every
    other login and the ACLs; roles are held to them; a restart keeps logins and ACLs.
    """
    creds = write_secrets(tmp_path / "secrets")
    ports = {19092: free_port(), 9094: free_port(), 9093: free_port()}
    bootstrap = f"127.0.0.1:{ports[19092]}"
    admin = client_config("admin", creds["admin"])
    log = tmp_path / "broker.out"
    proc = _start_compose_broker(tmp_path, tmp_path / "secrets" / "admin.json", ports)
    try:
        _wait_answers(proc, bootstrap, admin, log)
        feed = client_config("feed", creds["feed"])
        with pytest.raises(KafkaException):  # only the admin login exists before the init
            AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **feed}).list_topics(
                timeout=3
            )
        monkeypatch.setenv("TICKWISE_SASL_USERNAME", "admin")
        monkeypatch.setenv("TICKWISE_CREDENTIALS_FILE", str(tmp_path / "secrets" / CREDS))
        assert main(["security", "apply", "--bootstrap-servers", bootstrap]) == 0
        deadline = time.monotonic() + 60
        while not produce(bootstrap, feed, ["ticks.raw"], ""):
            assert time.monotonic() < deadline, "the init's logins or ACLs never applied"
            time.sleep(1)
        assert produce(bootstrap, feed, NAMES, "") == {"ticks.raw"}
        reader = client_config("reader", creds["reader"])
        assert produce(bootstrap, reader, ["decisions"], "") == set()
        _stop(proc)
        proc = _start_compose_broker(tmp_path, tmp_path / "secrets" / "admin.json", ports)
        _wait_answers(proc, bootstrap, admin, log)
        assert produce(bootstrap, feed, NAMES, "") == {"ticks.raw"}, "kept across a restart"
    finally:
        _stop(proc)


def test_the_watchtower_runs_with_its_own_login(
    secure: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tickwise watch` logs in as the watch role: it reads the audit trail with its own group,
    the raw ticks with its reader's consumer, creates its changelogs, looks at the workers' group
    (no worker: WORKER_DOWN, not BROKER_UNREACHABLE) and its alerts land on the alerts topic."""
    bootstrap, credentials = secure
    prefix = "sec5."
    admin = client_config("admin", credentials["admin"])
    create_topics(bootstrap, prefix, client_config=admin)
    apply_policy(bootstrap, admin, prefix)
    deadline = time.monotonic() + 60
    # the audit role's message, no audit record: the watchtower must read it and say so
    while not produce(bootstrap, client_config("audit", credentials["audit"]), ["audit"], prefix):
        assert time.monotonic() < deadline, "the ACLs of the prefix never applied"
        time.sleep(1)
    config = tmp_path / "watch.toml"
    config.write_text('[watch]\nworker_group = "tickwise"\nstale_after_s = 600.0\n')
    monkeypatch.setenv("TICKWISE_SASL_USERNAME", "watch")
    monkeypatch.setenv("TICKWISE_SASL_PASSWORD", credentials["watch"])
    log = tmp_path / "watch.log"
    metrics_port = free_port()
    watch = spawn_watch(bootstrap, prefix, str(config), metrics_port, str(log), "INFO")
    feed = client_config("feed", credentials["feed"])
    assert produce(bootstrap, feed, ["ticks.raw"], prefix) == {"ticks.raw"}
    alerts: dict[str, str] = {}
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{prefix}tickwise-reader-test",
            "enable.auto.commit": False,
            **client_config("reader", credentials["reader"]),
        }
    )
    reader.assign([TopicPartition(f"{prefix}alerts", 0, OFFSET_BEGINNING)])
    try:
        deadline = time.monotonic() + 150
        while not {"AUDIT_UNREADABLE", "WORKER_DOWN"} <= set(alerts):
            assert time.monotonic() < deadline, (alerts, log.read_text()[-3000:])
            assert watch.poll() is None, log.read_text()[-3000:]
            msg = reader.poll(0.5)
            if msg is not None and msg.error() is None:
                alert = json.loads(msg.value() or b"{}")
                alerts[alert["code"]] = alert["detail"]
        while not scrape(metrics_port).get(("tickwise_watch_ticks_read_total", ())):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        reader.close()
        stop_process(watch)
    assert "raw-tick reader" not in log.read_text(), log.read_text()[-3000:]
    assert "BROKER_UNREACHABLE" not in alerts, alerts
    assert f"{prefix}audit" in alerts["AUDIT_UNREADABLE"]
    listed = AdminClient({"bootstrap.servers": bootstrap, **admin}).list_topics(timeout=10)
    assert f"{prefix}tickwise-watch-chain-heads-changelog" in listed.topics
