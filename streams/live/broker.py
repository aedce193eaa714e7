"""A local Apache Kafka broker without Docker: one KRaft node (broker and controller) on 127.0.0.1,
or a small cluster of them (``LocalCluster``) where a test needs a partition leader to move.

Why: tests, the demo and developers need a real broker, and the machines this project runs on have
Java and Maven but no Docker engine. Kafka's jars come from Maven Central once and are cached under
``${XDG_CACHE_HOME:-~/.cache}/tickwise/kafka/<version>/libs``; the broker runs detached so that
``tickwise broker start`` returns while it keeps running, and ``stop``/``status`` find it again
through the pid file in its data directory. ``SecureLocalBroker`` is the same node under the
secure profile, with the logins and ACLs of ``streams.live.security``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tickwise.streams.live.security import (
    ADMIN,
    CREDENTIALS_FILE,
    MECHANISM,
    client_config,
    ensure_users,
    load_credentials,
    new_credentials,
)

log = logging.getLogger(__name__)

DEFAULT_VERSION = "4.1.1"
DEFAULT_PORT = 9092
DEFAULT_HEAP = "1g"
MIN_HEAP = "512m"
HOST = "127.0.0.1"
NODE_ID = 1
STOP_GRACE_SECONDS = 30.0

# Kafka 4.x logs through SLF4J 1.7 and ships log4j2; 3.x shipped reload4j. Neither backend is a
# dependency of kafka_2.13 in its POM, so it is added here.
_LOG4J2_BINDING = ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")
_RELOAD4J_BINDINGS = (
    ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ("ch.qos.reload4j", "reload4j", "1.2.25"),
)
_COMPLETE_MARKER = ".tickwise-complete"

PID_FILE = "broker.pid"
STATE_FILE = "broker.json"
PROPS_FILE = "server.properties"
LOG4J2_FILE = "log4j2.properties"
LOG4J1_FILE = "log4j.properties"
CONSOLE_LOG = "broker.out"
SERVER_LOG = "server.log"


class BrokerError(RuntimeError):
    """The local broker could not be provisioned, started or stopped."""


def cache_root() -> Path:
    """Return tickwise's cache directory, honouring ``XDG_CACHE_HOME`` like other tools."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tickwise"


def kafka_version() -> str:
    """Return the Kafka version to run: ``TICKWISE_KAFKA_VERSION`` or the tested default."""
    return os.environ.get("TICKWISE_KAFKA_VERSION") or DEFAULT_VERSION


def default_data_dir() -> Path:
    """Return where ``tickwise broker`` keeps its data when no ``--data-dir`` is given."""
    return cache_root() / "broker"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _major(version: str) -> int:
    match = re.match(r"(\d+)\.", version)
    if not match:
        raise BrokerError(f"not a Kafka version: {version!r}")
    return int(match.group(1))


def _pom(version: str) -> str:
    """Build a POM whose runtime classpath is what a broker of ``version`` needs."""
    deps = [("org.apache.kafka", "kafka_2.13", version)]
    deps += [_LOG4J2_BINDING] if _major(version) >= 4 else list(_RELOAD4J_BINDINGS)
    body = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*dep)
        for dep in deps
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tickwise</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{body}
  </dependencies>
</project>
"""


def _jars_complete(libs: Path) -> bool:
    marker = libs / _COMPLETE_MARKER
    if not marker.is_file():
        return False
    names = marker.read_text().split()
    return bool(names) and all((libs / name).is_file() for name in names)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so parallel test runs do not resolve or start the same thing twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_jars(version: str | None = None) -> Path:
    """Return the directory holding Kafka ``version``'s runtime jars, resolving them once.

    Maven does the resolution (with its own ``~/.m2`` cache) so that transitive versions are the
    ones Kafka's POM asks for; a marker written after success makes later calls instant.
    """
    version = version or kafka_version()
    home = cache_root() / "kafka" / version
    libs = home / "libs"
    if _jars_complete(libs):
        return libs
    with _file_lock(home / ".lock"):
        if _jars_complete(libs):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven ('mvn') is needed once to fetch Kafka's jars from Maven Central; "
                "install it (e.g. apt-get install maven) and retry"
            )
        (home / "pom.xml").write_text(_pom(version))
        staging = Path(tempfile.mkdtemp(prefix="libs.", dir=home))
        cmd = [
            mvn, "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        log.info("resolving Kafka %s jars with Maven into %s", version, libs)
        started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if result.returncode != 0 or not any(n.startswith("kafka_2.13-") for n in jars):
            shutil.rmtree(staging, ignore_errors=True)
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise BrokerError(f"Maven could not resolve Kafka {version}:\n{output}")
        (staging / _COMPLETE_MARKER).write_text("\n".join(jars) + "\n")
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
        log.info("resolved %d jars in %.1f s", len(jars), time.monotonic() - started)
    return libs


def _size_bytes(size: str) -> int:
    match = re.fullmatch(r"(\d+)([kmg]?)", size.strip().lower())
    if not match:
        raise BrokerError(f"heap size must look like 512m or 1g, not {size!r}")
    factor = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2)]
    return int(match.group(1)) * factor


def heap_options(heap: str) -> list[str]:
    """Return JVM heap flags: ``heap`` is the maximum; the minimum is 512m or less.

    A small fixed floor keeps a 2-core, shared machine from reserving a full heap up front.
    """
    smallest = heap if _size_bytes(heap) < _size_bytes(MIN_HEAP) else MIN_HEAP
    return [f"-Xms{smallest.strip().lower()}", f"-Xmx{heap.strip().lower()}"]


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java 17 or newer is needed to run Kafka; 'java' is not on PATH")
    return java


def _cluster_id() -> str:
    """Kafka's cluster id format: 16 random bytes, URL-safe base64 without padding.

    Never one starting with ``-`` (one in 64 would): the storage tool's command line takes it
    for an option and refuses to format, as Kafka's own ``Uuid.randomUuid`` avoids.
    """
    while True:
        text = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def pid_alive(pid: int) -> bool:
    """Tell whether ``pid`` is a live process; a zombie has exited and released its ports."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # Field 3, after the parenthesised command name, is the state; Z is a zombie.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _broker_answers(
    bootstrap: str, timeout: float, client: dict[str, str] | None = None, node_id: int = NODE_ID
) -> bool:
    """Tell whether an AdminClient at ``bootstrap`` sees node ``node_id`` in the cluster metadata.

    An open port comes too early: the broker accepts connections before it has joined the quorum.
    """
    host, _, port = bootstrap.rpartition(":")
    if not port_open(int(port), host or HOST, timeout=min(timeout, 1.0)):
        return False
    from confluent_kafka import KafkaException  # here: the CLI parser reads this module's defaults
    from confluent_kafka.admin import AdminClient

    # log_level 0: refused or timed-out probes are expected while starting and are not news.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **(client or {})})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return node_id in metadata.brokers


def _tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    """Return the last ``lines`` lines of ``path`` written after byte ``offset``."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalBroker:
    """One Kafka KRaft node on 127.0.0.1 whose files all live in ``data_dir``.

    Several instances may share a data dir (say, the CLI's ``start`` and a later ``stop``): the
    pid and state files there, not the Python object, say whether the broker runs.
    """

    node_id = NODE_ID

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        data_dir: Path | None = None,
        heap: str = DEFAULT_HEAP,
        version: str | None = None,
    ) -> None:
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.heap = heap
        self.version = version or kafka_version()
        heap_options(heap)  # fail early on a malformed size
        self._proc: subprocess.Popen[bytes] | None = None
        # Log sizes when we launched, so a failure quotes this run and not an older one.
        self._log_offsets: dict[Path, int] = {}

    # -- files -------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>`` of the running broker, or of the requested port if none runs."""
        state = self._state()
        if state and self.is_running():
            return str(state["bootstrap"])
        return f"{HOST}:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Where Kafka keeps topic partitions and the KRaft metadata log."""
        return self.data_dir / "kraft-logs"

    @property
    def console_log(self) -> Path:
        """The broker's stdout and stderr; JVM crashes show up here."""
        return self.data_dir / CONSOLE_LOG

    @property
    def server_log(self) -> Path:
        """Kafka's own log, warnings and errors only."""
        return self.data_dir / "logs" / SERVER_LOG

    def _state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.data_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        """Return the pid from the pid file if that process is our broker and alive."""
        try:
            pid = int((self.data_dir / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():
            # Guard against a recycled pid: the process must be kafka.Kafka on our properties.
            with contextlib.suppress(OSError):
                args = cmdline.read_bytes().split(b"\0")
                props = str(self.data_dir / PROPS_FILE).encode()
                if b"kafka.Kafka" not in args or props not in args:
                    return None
        return pid

    def is_running(self) -> bool:
        """Tell whether a broker started from this data dir is alive (not necessarily ready)."""
        return self.pid() is not None

    def answers(self, timeout: float = 2.0) -> bool:
        """Tell whether the running broker serves metadata requests."""
        state = self._state()
        if not state or not self.is_running():
            return False
        return _broker_answers(str(state["bootstrap"]), timeout, self.client_config(), self.node_id)

    def client_config(self) -> dict[str, str]:
        """Extra client settings a probe needs to talk to this broker (none: PLAINTEXT)."""
        return {}

    def _settings(self, controller_port: int) -> dict[str, object]:
        """The node's server.properties: one combined broker and controller."""
        return {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.log_dir,
            "num.partitions": 1,
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "share.coordinator.state.topic.num.partitions": 1,
            "group.initial.rebalance.delay.ms": 0,
        }

    def _write_configs(self, controller_port: int) -> Path:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        settings = self._settings(controller_port)
        props = self.data_dir / PROPS_FILE
        lines = ["# Written by tickwise (streams/live/broker.py); rewritten on every start."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        props.write_text("\n".join(lines) + "\n")
        # Quiet on purpose: warnings and errors only, to a file, so a failing start can quote it.
        (self.data_dir / LOG4J2_FILE).write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {logs / SERVER_LOG}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\n"
            "rootLogger.appenderRef.file.ref = file\n"
        )
        (self.data_dir / LOG4J1_FILE).write_text(
            "log4j.rootLogger=WARN, file\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={logs / SERVER_LOG}\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        return props

    def _jvm_logging_options(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.data_dir / LOG4J2_FILE}",
            f"-Dlog4j.configuration=file:{self.data_dir / LOG4J1_FILE}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
        ]

    def _format_storage(self, java: str, libs: Path, props: Path) -> None:
        if (self.log_dir / "meta.properties").exists():
            return
        cmd = [
            java, "-Xmx256m", *self._jvm_logging_options(), "-cp", f"{libs}/*",
            "kafka.tools.StorageTool", "format", "-t", self._cluster_id(), "-c", str(props),
            *self._format_options(),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise BrokerError(f"formatting Kafka storage in {self.log_dir} failed:\n{output}")

    def _format_options(self) -> list[str]:
        """Extra ``StorageTool format`` arguments (the secure profile adds SCRAM credentials)."""
        return []

    def _cluster_id(self) -> str:
        """The id the storage is formatted with (a new one: this node is a cluster of its own)."""
        return _cluster_id()

    def _controller_port(self) -> int:
        """The controller listener's port: any free one other than the client port."""
        controller_port = free_port()
        while controller_port == self.port:
            controller_port = free_port()
        return controller_port

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker (or find it already running) and return its bootstrap address.

        Returns only once an AdminClient sees the node, so callers can create topics at once.
        ``timeout`` counts from the launch: fetching the jars the first time is not included.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / ".lock"):
            if self.is_running():
                return self._adopt_running(time.monotonic() + timeout)
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
            if port_open(self.port):
                raise BrokerError(
                    f"port {self.port} on {HOST} is already taken by another process; "
                    "pick another with --port"
                )
            libs = ensure_jars(self.version)
            java = _java()
            props = self._write_configs(self._controller_port())
            self._format_storage(java, libs, props)
            deadline = time.monotonic() + timeout
            self._launch(java, libs, props)
        try:
            self._wait_ready(deadline, timeout)
        except BrokerError:
            self.stop(timeout=10.0)  # do not leave a half-started broker holding the ports
            raise
        return self.bootstrap

    def _adopt_running(self, deadline: float) -> str:
        state = self._state() or {}
        running_port = int(state.get("port", self.port))
        if running_port != self.port:
            raise BrokerError(
                f"a broker from {self.data_dir} already runs on port {running_port}, "
                f"not {self.port}; stop it first"
            )
        log.info("broker from %s already running (pid %s)", self.data_dir, self.pid())
        self._wait_ready(deadline, None)
        return self.bootstrap

    def _launch(self, java: str, libs: Path, props: Path) -> None:
        cmd = [
            java, *heap_options(self.heap), "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true", *self._jvm_logging_options(),
            "-cp", f"{libs}/*", "kafka.Kafka", str(props),
        ]  # fmt: skip
        self._log_offsets = {
            path: path.stat().st_size if path.exists() else 0
            for path in (self.server_log, self.console_log)
        }
        with self.console_log.open("ab") as out:
            # A session of its own: Ctrl-C in the starting shell must not reach the broker.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                close_fds=True,
            )
        pid = self._proc.pid
        (self.data_dir / PID_FILE).write_text(f"{pid}\n")
        state = {"pid": pid, "port": self.port, "bootstrap": f"{HOST}:{self.port}"}
        state["version"] = self.version
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        log.info("launched Kafka %s (pid %d) on %s", self.version, pid, state["bootstrap"])

    def _wait_ready(self, deadline: float, timeout: float | None) -> None:
        bootstrap = f"{HOST}:{self.port}"
        launched = self._proc
        while True:
            # Our own child is judged by its exit status: /proc/<pid>/cmdline can read empty
            # while the java launcher re-executes itself, which made a healthy start look dead.
            alive = launched.poll() is None if launched is not None else self.is_running()
            if not alive:
                raise BrokerError(
                    f"the Kafka broker exited while starting; its log says:\n{self._log_tails()}"
                )
            left = deadline - time.monotonic()
            if _broker_answers(
                bootstrap, max(0.5, min(2.0, left)), self.client_config(), self.node_id
            ):
                return
            if time.monotonic() >= deadline:
                waited = f" after {timeout:.0f} s" if timeout is not None else ""
                raise BrokerError(
                    f"the Kafka broker at {bootstrap} did not answer{waited} "
                    f"(data dir {self.data_dir}); its log says:\n{self._log_tails()}"
                )
            time.sleep(0.25)

    def _log_tails(self) -> str:
        parts = []
        for path in (self.server_log, self.console_log):
            tail = _tail(path, self._log_offsets.get(path, 0))
            if tail:
                parts.append(f"--- {path} ---\n{tail}")
        return "\n".join(parts) or "(the broker wrote no log)"

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop the broker: SIGTERM for a clean shutdown, SIGKILL if it takes over ``timeout``."""
        pid = self.pid()
        if pid is None:
            self._forget()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("broker pid %d ignored SIGTERM for %.0f s; killing it", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self._forget()

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: reap it, or it lingers as a zombie that still "exists".
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _forget(self) -> None:
        self._proc = None
        (self.data_dir / PID_FILE).unlink(missing_ok=True)
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ClusterNode(LocalBroker):
    """One node (broker and controller) of a ``LocalCluster``: its node id, a fixed controller
    port the other voters know, the cluster's id, and internal topics replicated ``replicas``
    times."""

    def __init__(
        self,
        node_id: int,
        port: int,
        controller_port: int,
        voters: str,
        cluster_id: str,
        data_dir: Path,
        heap: str = MIN_HEAP,
        replicas: int = 3,
    ) -> None:
        super().__init__(port=port, data_dir=data_dir, heap=heap)
        self.node_id = node_id
        self.controller_port = controller_port
        self.voters = voters
        self.cluster = cluster_id
        self.replicas = replicas

    def _settings(self, controller_port: int) -> dict[str, object]:
        min_isr = max(1, self.replicas - 1)  # one node may be down and writes still commit
        return {
            **super()._settings(controller_port),
            "node.id": self.node_id,
            "controller.quorum.voters": self.voters,
            "default.replication.factor": self.replicas,
            "offsets.topic.replication.factor": self.replicas,
            "transaction.state.log.replication.factor": self.replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": self.replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
        }

    def _cluster_id(self) -> str:
        return self.cluster

    def _controller_port(self) -> int:
        return self.controller_port


class LocalCluster:
    """``size`` KRaft nodes on 127.0.0.1, each a broker and a controller, in ``data_dir``.

    Why: a single node cannot move a partition's leadership. Tests of a leader change (a node
    stopped, a preferred-leader election) need replicas on other nodes and a quorum that
    outlives one of them.
    """

    def __init__(self, data_dir: Path, size: int = 3, heap: str = MIN_HEAP) -> None:
        ports: list[int] = []
        while len(ports) < 2 * size:
            port = free_port()
            if port not in ports:
                ports.append(port)
        cluster_id = _cluster_id()
        ids = range(1, size + 1)
        voters = ",".join(f"{i}@{HOST}:{ports[size + i - 1]}" for i in ids)
        self.nodes = {
            i: ClusterNode(
                i,
                ports[i - 1],
                ports[size + i - 1],
                voters,
                cluster_id,
                Path(data_dir) / f"node{i}",
                heap,
                replicas=min(3, size),
            )
            for i in ids
        }

    @property
    def bootstrap(self) -> str:
        """Every node's client address, so a client reaches the cluster while one is down."""
        return ",".join(f"{HOST}:{node.port}" for node in self.nodes.values())

    def start(self, timeout: float = 180.0) -> str:
        """Start every node at once (none answers before a quorum of them runs)."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for started in [pool.submit(n.start, timeout) for n in self.nodes.values()]:
                started.result()
        return self.bootstrap

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every node that runs, all at once: stopped one by one, the last ones lose their
        quorum and wait out ``timeout`` for a controlled shutdown that cannot happen."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for stopped in [pool.submit(n.stop, timeout) for n in self.nodes.values()]:
                stopped.result()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SecureLocalBroker(LocalBroker):
    """``LocalBroker`` with SCRAM logins on the client listener and the StandardAuthorizer.

    The controller listener (127.0.0.1 only) authenticates with SASL/PLAIN against a static
    admin login: KRaft cannot check SCRAM there, because SCRAM credentials live in the metadata
    log the controller itself serves.
    """

    def __init__(self, port: int, data_dir: Path | None = None, heap: str = "1g") -> None:
        super().__init__(port=port, data_dir=data_dir, heap=heap)

    @property
    def credentials_path(self) -> Path:
        """The credentials file: ``TICKWISE_CREDENTIALS_FILE`` if it exists, else the data dir's."""
        given = os.environ.get("TICKWISE_CREDENTIALS_FILE")
        if given and Path(given).exists():
            return Path(given)
        return self.data_dir / CREDENTIALS_FILE

    def credentials(self) -> dict[str, str]:
        """Passwords of admin and every role, created (0600) on first use."""
        path = self.credentials_path
        if path.exists():
            return load_credentials(path)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        creds = new_credentials()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(creds, fh, indent=2)
        return creds

    def client_config(self) -> dict[str, str]:
        return client_config(ADMIN, self.credentials()[ADMIN])

    def _write_configs(self, controller_port: int) -> Path:
        props = super()._write_configs(controller_port)
        password = self.credentials()[ADMIN]
        scram = f'username="{ADMIN}" password="{password}";'
        plain = f'username="{ADMIN}" password="{password}" user_{ADMIN}="{password}";'
        secure = {
            "listeners": f"SASL_PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"SASL_PLAINTEXT://{HOST}:{self.port}",
            "listener.security.protocol.map": (
                "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
            ),
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain}"
            ),
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": (
                f"org.apache.kafka.common.security.scram.ScramLoginModule required {scram}"
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN}",
        }
        lines = [
            line for line in props.read_text().splitlines() if line.split("=", 1)[0] not in secure
        ]
        lines += [f"{key}={value}" for key, value in secure.items()]
        props.write_text("\n".join(lines) + "\n")
        props.chmod(0o600)  # it holds the admin password
        return props

    def _format_options(self) -> list[str]:
        return ["--add-scram", f"{MECHANISM}=[name={ADMIN},password={self.credentials()[ADMIN]}]"]

    def start(self, timeout: float = 90.0) -> str:
        """Start (or adopt) the broker, then make sure every role's login exists."""
        bootstrap = super().start(timeout)
        ensure_users(bootstrap, self.client_config(), self.credentials())
        return bootstrap


# -- command line ----------------------------------------------------------------------------


def run_cli(args: argparse.Namespace) -> int:
    """Carry out one ``tickwise broker`` action and return the exit code."""
    try:
        if getattr(args, "secure", False):
            broker: LocalBroker = SecureLocalBroker(args.port, args.data_dir, args.heap)
        else:
            broker = LocalBroker(port=args.port, data_dir=args.data_dir, heap=args.heap)
        if args.action == "start":
            return _cli_start(broker, args.timeout)
        if args.action == "stop":
            return _cli_stop(broker)
        return _cli_status(broker)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _cli_start(broker: LocalBroker, timeout: float) -> int:
    if broker.is_running():
        bootstrap = broker.start(timeout)
        print(f"broker already running at {bootstrap} (pid {broker.pid()}, {broker.data_dir})")
        return 0
    if not _jars_complete(cache_root() / "kafka" / broker.version / "libs"):
        print(f"fetching Kafka {broker.version} jars with Maven (once; ~20 s)...")
    print(f"starting Kafka {broker.version} on {HOST}:{broker.port} ...")
    started = time.monotonic()
    bootstrap = broker.start(timeout)
    print(
        f"broker running at {bootstrap} (pid {broker.pid()}, ready in "
        f"{time.monotonic() - started:.1f} s, data dir {broker.data_dir})"
    )
    return 0


def _cli_stop(broker: LocalBroker) -> int:
    pid = broker.pid()
    if pid is None:
        print(f"broker not running ({broker.data_dir})")
        broker.stop()  # clears a stale pid file
        return 0
    broker.stop()
    print(f"broker stopped (pid {pid})")
    return 0


def _cli_status(broker: LocalBroker) -> int:
    pid = broker.pid()
    if pid is None:
        print(f"broker not running ({broker.data_dir})")
        return 1
    answering = "" if broker.answers() else ", not answering yet"
    print(f"broker running at {broker.bootstrap} (pid {pid}{answering}, {broker.data_dir})")
    return 0
