"""``tickwise console``: the trader and operator web page, served by aiohttp.

One Kafka consumer task reads the deployment's topics into a ``ConsoleView``: from their first
offset when the console stands alone, or only their last ``--tail`` messages per partition when
it is pointed at a watchtower (``--watch-url``), whose views give the health, the trading
windows and the accounts over the whole trail (``watch``); so a console opened after a week of
trading reads what it reads on the first day. A broadcaster
pushes its snapshot to every open page with server-sent events (at most ``PUSH_S`` apart, only
when something changed), so a browser never polls and nothing is read from a database. Every
endpoint that shows the desk (state, events, metrics) takes a bearer token of a viewer or
better and refuses anonymous requests (401); only the page and its static assets load without
one. Control endpoints also refuse viewers (403) and publish a ``ControlCommand`` on the
``control`` topic whose operator is the authenticated user; workers apply it and their audit
records name that operator. Where the console may listen, and with which TLS, is
``doors.check_listen``'s decision. aiohttp is already installed as faust's
web layer, so the console adds no dependency; the page is plain HTML and JavaScript shipped in
the package, with nothing fetched from the internet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaError, TopicPartition
from pydantic import TypeAdapter, ValidationError

from tickwise.schemas.decisions import ControlCommand, Stage
from tickwise.schemas.ticks import Instrument
from tickwise.schemas.topics import Topics
from tickwise.streams.config import TickwiseConfig, load_config
from tickwise.streams.console.metrics import ConsoleMetrics
from tickwise.streams.console.view import SPECS, ConsoleView
from tickwise.streams.console.watch import TOKEN_ENV as WATCH_TOKEN_ENV
from tickwise.streams.console.watch import WatchSource, WatchURLError, follow
from tickwise.streams.live.bootstrap import resolve_bootstrap
from tickwise.streams.live.control import send_control
from tickwise.streams.live.registry_log import publish_log
from tickwise.streams.live.tap import tail_consumer
from tickwise.streams.registry import DEFAULT_ROOT, Registry, RegistryError
from tickwise.streams.web.auth import USERS_ENV, AuthConfigError, User, Users, bearer
from tickwise.streams.web.doors import DoorError, check_listen, is_loopback

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PUSH_S = 0.25  # at most four pushes a second per page
HEARTBEAT_S = 15.0
BATCH = 1000
LAG_EVERY_S = 5.0
TAIL = 500  # messages per partition a console beside a watchtower reads back
_INSTRUMENT = TypeAdapter(Instrument)


class Console:
    """The consumer, the view, the open pages and the control publisher of one console."""

    def __init__(
        self,
        bootstrap: str,
        config: TickwiseConfig,
        users: Users,
        registry_root: str | Path = DEFAULT_ROOT,
        watch: WatchSource | None = None,
        tail: int = TAIL,
    ) -> None:
        self.watch = watch
        self.tail = tail if watch is not None else None  # alone, it reads the whole topics
        self.bootstrap = bootstrap
        self.config = config
        self.users = users
        self.registry_root = registry_root
        self.topics = Topics(config.topic_prefix)
        self.names = {self.topics.name(spec): spec.name for spec in SPECS}
        self.view = ConsoleView(config)
        self.metrics = ConsoleMetrics(self.view)
        self.clients: set[asyncio.Queue[str]] = set()
        self.ready = asyncio.Event()

    # --- Kafka -> view ----------------------------------------------------------------------

    async def consume(self, read_up: asyncio.Event) -> None:
        """Read every console topic from the start (or the tail, beside a watchtower), then
        follow; set ``read_up`` once each partition's end was reached. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        # a group under the console role's prefix, which the secure profile's ACLs allow
        group = f"{self.topics.prefix}tickwise-console-{uuid.uuid4().hex[:8]}"
        c = await loop.run_in_executor(
            None, tail_consumer, self.bootstrap, list(self.names), group, self.tail
        )
        next_lag = 0.0
        ended: set[tuple[str, int]] = set()
        try:
            while True:
                batch = await loop.run_in_executor(None, c.consume, BATCH, 0.2)
                for msg in batch:
                    if msg.error():
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            ended.add((msg.topic(), msg.partition()))
                        else:
                            log.error("console consumer: %s", msg.error())
                        continue
                    name = self.names[msg.topic()]
                    if not self.view.apply(name, msg.value() or b""):
                        log.warning(
                            "console: undecodable message on %s[%s]@%s",
                            msg.topic(),
                            msg.partition(),
                            msg.offset(),
                        )
                if not read_up.is_set():
                    parts = await loop.run_in_executor(None, c.assignment)
                    if parts and all((tp.topic, tp.partition) in ended for tp in parts):
                        read_up.set()
                if time.monotonic() >= next_lag:
                    next_lag = time.monotonic() + LAG_EVERY_S
                    lag = await loop.run_in_executor(None, _lag, c)
                    self.metrics.set_lag({self.names[t]: n for t, n in lag.items()})
        finally:
            await loop.run_in_executor(None, c.close)

    async def become_ready(self, read_up: asyncio.Event, watched: asyncio.Event) -> None:
        """Ready once the topics are read up to where they ended and, beside a watchtower,
        its views answered once (or failed to: the page then shows why)."""
        await read_up.wait()
        if self.watch is not None:
            await watched.wait()
        self.view.on_ready()
        self.ready.set()
        log.info("console: ready, %s messages read", sum(self.view.counts.values()))

    async def broadcast(self) -> None:
        """Push the snapshot to every page when it changed, at most every ``PUSH_S``."""
        sent = -1
        while True:
            await asyncio.sleep(PUSH_S)
            if self.view.version == sent or not self.clients:
                continue
            sent = self.view.version
            data = json.dumps(self.view.snapshot(), separators=(",", ":"))
            for queue in self.clients:
                if queue.full():  # a slow page gets the newest state, not a backlog
                    queue.get_nowait()
                queue.put_nowait(data)

    # --- HTTP -------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def state(self, request: web.Request) -> web.Response:
        self._user(request, control=False)
        return web.json_response(self.view.snapshot())

    async def events(self, request: web.Request) -> web.StreamResponse:
        self._user(request, control=False)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.clients.add(queue)
        self.metrics.pages.inc()
        try:
            await response.write(_sse(json.dumps(self.view.snapshot(), separators=(",", ":"))))
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                await response.write(_sse(data))
        except ConnectionResetError:
            log.info("console: a page went away")
        finally:
            self.clients.discard(queue)
            self.metrics.pages.dec()
        return response

    def _user(self, request: web.Request, control: bool) -> User:
        user = self.users.authenticate(bearer(request.headers.get("Authorization")))
        if user is None:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": "log in with a viewer or operator token"}),
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="tickwise"'},
            )
        if control and not user.can_control:
            raise web.HTTPForbidden(
                text=json.dumps({"error": f"{user.name} is a {user.role}: controls need operator"}),
                content_type="application/json",
            )
        return user

    async def whoami(self, request: web.Request) -> web.Response:
        user = self._user(request, control=False)
        return web.json_response({"name": user.name, "role": user.role})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _bad(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _bad("body must be a JSON object")
        reason = str(body.get("reason") or "").strip()
        if not reason:
            raise _bad("a reason is required (it goes into the audit trail)")
        body["reason"] = reason
        return body

    async def _send(self, command: ControlCommand, user: User) -> web.Response:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, send_control, self.bootstrap, self.topics.control, command)
        self.metrics.controls.labels(command.command, user.name).inc()
        log.warning(
            "console: %s sent %s %s (%s)", user.name, command.command, command.scope, command.reason
        )
        return web.json_response(
            {"command_id": command.command_id, "topic": self.topics.control, "operator": user.name},
            status=202,
        )

    async def kill_switch(self, request: web.Request) -> web.Response:
        user = self._user(request, control=True)
        body = await self._body(request)
        state = body.get("state")
        if state not in ("on", "off"):
            raise _bad("state must be 'on' or 'off'")
        scope = str(body.get("scope") or "global")
        if scope != "global":
            try:
                _INSTRUMENT.validate_python(scope)
            except ValidationError as exc:
                raise _bad(f"scope must be 'global' or an instrument, got {scope!r}") from exc
        now = time.time_ns()  # wall clock: when the operator asked, not an event time
        command = ControlCommand(
            command_id=f"console-ks-{scope}-{state}-{now}-{uuid.uuid4().hex[:6]}",
            command="kill_switch_on" if state == "on" else "kill_switch_off",
            scope=scope,
            reason=body["reason"],
            operator=user.name,
            ts_event_ns=now,
        )
        return await self._send(command, user)

    async def promote(self, request: web.Request) -> web.Response:
        user = self._user(request, control=True)
        body = await self._body(request)
        key, stage = str(body.get("model") or ""), str(body.get("stage") or Stage.PRODUCTION)
        command = await self._registry_call(
            "promote", key, stage, user.name, body["reason"], time.time_ns()
        )
        return await self._send(command, user)

    async def rollback(self, request: web.Request) -> web.Response:
        user = self._user(request, control=True)
        body = await self._body(request)
        command = await self._registry_call("rollback", user.name, body["reason"], time.time_ns())
        return await self._send(command, user)

    async def _registry_call(self, method: str, *args: Any) -> ControlCommand:
        """Promote and rollback go through the registry, and its log onto its topic, as
        ``tickwise model`` does."""
        registry = Registry(self.registry_root)
        loop = asyncio.get_running_loop()
        try:
            command = await loop.run_in_executor(None, getattr(registry, method), *args)
            await loop.run_in_executor(
                None, publish_log, registry, self.bootstrap, self.topics.registry
            )
            return command
        except (RegistryError, FileNotFoundError, KeyError) as exc:
            raise web.HTTPConflict(
                text=json.dumps({"error": f"{method}: {exc}"}), content_type="application/json"
            ) from exc

    async def prometheus(self, request: web.Request) -> web.Response:
        self._user(request, control=False)  # it shows P&L and halts per instrument
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    def app(self, background: bool = True) -> web.Application:
        """The aiohttp application, with the consumer and broadcaster as background tasks
        (``background=False``: routes only, for tests that need no broker)."""
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/events", self.events)
        app.router.add_get("/api/whoami", self.whoami)
        app.router.add_post("/api/control/kill-switch", self.kill_switch)
        app.router.add_post("/api/control/promote", self.promote)
        app.router.add_post("/api/control/rollback", self.rollback)
        app.router.add_get("/metrics", self.prometheus)
        if background:
            app.cleanup_ctx.append(self._background)
        return app

    async def _background(self, app: web.Application) -> Any:
        read_up, watched = asyncio.Event(), asyncio.Event()
        tasks = [
            asyncio.create_task(self.consume(read_up)),
            asyncio.create_task(self.broadcast()),
            asyncio.create_task(self.become_ready(read_up, watched)),
        ]
        if self.watch is not None:
            tasks.append(asyncio.create_task(follow(self.watch, self.view.on_watch, watched)))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _sse(data: str) -> bytes:
    return f"event: state\ndata: {data}\n\n".encode()


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _lag(c: Any) -> dict[str, int]:
    """Messages between the console's position and each topic's end, summed over partitions."""
    out: dict[str, int] = {}
    parts = c.assignment()
    for tp in c.position(parts) if parts else []:
        _, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2)
        position = tp.offset if tp.offset >= 0 else 0
        out[tp.topic] = out.get(tp.topic, 0) + max(0, high - position)
    return out


def spawn_console(
    bootstrap: str,
    topic_prefix: str,
    port: int,
    users: str,
    config: str | None = None,
    log_path: str | None = None,
    ready_timeout: float = 30.0,
    tls: tuple[str, str] | None = None,
    host: str = "127.0.0.1",
    insecure: bool = False,
    watch_url: str | None = None,
    watch_token: str | None = None,
    tail: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``tickwise console`` as its own process and wait until it serves its page.

    ``users`` is a ``TICKWISE_CONSOLE_USERS`` value (``name:role:token,...``), passed through
    the child's environment, never its command line. ``tls`` is a (certificate, key) pair of
    PEM files; the readiness probe trusts that certificate and no other, so it must name
    127.0.0.1 when ``host`` is a wildcard. ``watch_url``: the watchtower's views, read with
    ``watch_token`` (through the environment too); ``tail``: messages per partition read back.
    """
    cmd = [
        sys.executable,
        "-m",
        "tickwise.streams.cli",
        "console",
        "--bootstrap-servers",
        bootstrap,
    ]
    cmd += ["--topic-prefix", topic_prefix, "--host", host, "--port", str(port)]
    if config:
        cmd += ["--config", config]
    if tls:
        cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    if insecure:
        cmd.append("--insecure")
    if watch_url:
        cmd += ["--watch-url", watch_url]
    if tail is not None:
        cmd += ["--tail", str(tail)]
    env = {**os.environ, USERS_ENV: users}
    if watch_token:
        env[WATCH_TOKEN_ENV] = watch_token
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    probe_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    url = f"{'https' if tls else 'http'}://{probe_host}:{port}/"
    context = ssl.create_default_context(cafile=tls[0]) if tls else None
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tickwise console exited with {proc.returncode} (log: {log_path})")
        try:
            with urllib.request.urlopen(url, timeout=1, context=context):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"tickwise console did not serve on {url} within {ready_timeout} s")


def run_cli(args: argparse.Namespace) -> int:
    """Carry out ``tickwise console``: serve until stopped."""
    try:
        context = check_listen(args.host, args.tls_cert, args.tls_key, args.insecure)
    except DoorError as exc:
        print(f"tickwise console: {exc}", file=sys.stderr)
        return 2
    config = load_config(args.config, topic_prefix=args.topic_prefix)
    try:
        users = Users.load(args.users)
    except AuthConfigError as exc:
        print(f"tickwise console: {exc}")
        return 2
    try:
        watch = WatchSource.of(args.watch_url, args.watch_ca) if args.watch_url else None
    except WatchURLError as exc:
        print(f"tickwise console: {exc}", file=sys.stderr)
        return 2
    console = Console(
        resolve_bootstrap(args), config, users, args.registry or DEFAULT_ROOT, watch, args.tail
    )
    if not len(users):
        print("tickwise console: no users configured: nobody can read or control (see --users)")
    scheme = "https" if context else "http"
    if context is None and not is_loopback(args.host):
        print("tickwise console: --insecure: plain HTTP off loopback, tokens travel in clear")
    source = (
        f"the watchtower at {watch.url} and the last {args.tail} messages of each partition"
        if watch
        else "the topics from their first offset"
    )
    print(
        f"tickwise console on {scheme}://{args.host}:{args.port}/ (topics '{config.topic_prefix}'; "
        f"reads {source})"
    )
    web.run_app(
        console.app(),
        host=args.host,
        port=args.port,
        ssl_context=context,
        print=None,
        access_log=None,
        shutdown_timeout=2.0,  # open pages hold event streams: do not wait a minute for them
    )
    return 0
