"""The console's doors: no anonymous read of what the desk shows, and no plain HTTP off
loopback. Each refusal is tested on a real HTTP server (aiohttp's test server, or the
``tickwise console`` process itself), with no broker involved."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from stubs import self_signed_cert

from tickwise.streams.config import TickwiseConfig
from tickwise.streams.console.server import Console, spawn_console
from tickwise.streams.live.broker import free_port
from tickwise.streams.live.tap import stop_process
from tickwise.streams.web.auth import Users
from tickwise.streams.web.doors import MIN_TLS, DoorError, check_listen, is_loopback

USERS = "alice:operator:alice-token-1,bob:viewer:bob-token-1"
READS = ("/api/state", "/api/events", "/metrics")
NO_BROKER = "127.0.0.1:1"  # nothing listens there: the HTTP side does not need Kafka


def get(path: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the first event block (or whole body) of one GET to a console app."""

    async def go() -> tuple[int, dict[str, str], bytes]:
        console = Console(NO_BROKER, TickwiseConfig(), Users.from_env_value(USERS))
        client = TestClient(TestServer(console.app(background=False)))
        await client.start_server()
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.get(path, headers=headers)
            if response.content_type == "text/event-stream":
                body = await response.content.readuntil(b"\n\n")  # the first push
            else:
                body = await response.read()
            return response.status, dict(response.headers), body
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.mark.parametrize("path", READS)
def test_an_anonymous_read_is_401_with_a_bearer_challenge(path: str) -> None:
    status, headers, body = get(path, None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert b"instruments" not in body and b"tickwise_console_pnl" not in body


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("token", ["not-a-known-token", "alice-token-", "bob-token-10"])
def test_a_wrong_token_reads_nothing(path: str, token: str) -> None:
    assert get(path, token)[0] == 401


@pytest.mark.parametrize("token", ["bob-token-1", "alice-token-1"])
def test_a_viewer_or_an_operator_reads_every_view(token: str) -> None:
    status, _, body = get("/api/state", token)
    assert status == 200 and json.loads(body)["instruments"] == {}
    status, headers, body = get("/api/events", token)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    event, data = body.decode().strip().split("\n")
    assert event == "event: state" and json.loads(data.removeprefix("data: ")) == json.loads(
        get("/api/state", token)[2]
    )
    status, _, body = get("/metrics", token)
    assert status == 200 and b"tickwise_console_pages" in body


def test_the_page_loads_without_a_token_and_shows_no_data() -> None:
    status, _, body = get("/", None)
    assert status == 200 and b'id="login-token"' in body
    status, _, script = get("/static/console.js", None)
    assert status == 200 and b'"Authorization": "Bearer " + token' in script
    assert b"EventSource(" not in script  # it cannot send the token; the page uses fetch


# --- where the console may listen -------------------------------------------------------------


@given(st.integers(0, 2**32 - 1))
def test_an_ipv4_literal_is_loopback_exactly_in_127_0_0_0_8(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    expected = n >> 24 == 127
    assert is_loopback(str(v4)) == expected
    assert is_loopback(f"::ffff:{v4}") == expected  # the same address, IPv4-mapped


@given(st.integers(0, 2**128 - 1))
def test_an_ipv6_literal_is_loopback_only_as_1_or_a_mapped_loopback(n: int) -> None:
    v6 = ipaddress.IPv6Address(n)
    mapped_loopback = n >> 32 == 0xFFFF and (n >> 24) & 0xFF == 127
    assert is_loopback(str(v6)) == (n == 1 or mapped_loopback)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "no-such-host.invalid"])
def test_plain_http_off_loopback_is_refused(host: str) -> None:
    with pytest.raises(DoorError, match="--insecure"):
        check_listen(host, None, None, insecure=False)
    assert check_listen(host, None, None, insecure=True) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_plain_http_on_loopback_is_allowed(host: str) -> None:
    assert check_listen(host, None, None, insecure=False) is None


def test_a_certificate_gives_a_tls_context_that_refuses_old_versions(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    context = check_listen("0.0.0.0", cert, key, insecure=False)
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == MIN_TLS >= ssl.TLSVersion.TLSv1_2
    with pytest.raises(DoorError, match="both"):
        check_listen("127.0.0.1", cert, None, insecure=True)  # never a silent plain-HTTP
    with pytest.raises(DoorError, match="no such file"):
        check_listen("127.0.0.1", cert, str(tmp_path / "missing.pem"), insecure=False)
    with pytest.raises(DoorError, match="cannot use"):
        check_listen("127.0.0.1", key, cert, insecure=False)  # swapped


def console_cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tickwise.streams.cli", "console", "--bootstrap-servers"]
    return subprocess.run(
        [*cmd, NO_BROKER, *args], capture_output=True, text=True, timeout=60, check=False
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_cli_refuses_a_non_loopback_bind_without_tls_before_listening() -> None:
    port = free_port()
    result = console_cli("--host", "0.0.0.0", "--port", str(port))
    assert result.returncode == 2
    assert "refusing to serve plain HTTP on 0.0.0.0" in result.stderr
    assert "tickwise console on" not in result.stdout and not listening(port)


def test_the_cli_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    cert, _ = self_signed_cert(tmp_path)
    result = console_cli("--host", "127.0.0.1", "--port", str(free_port()), "--tls-cert", cert)
    assert result.returncode == 2 and "--tls-key" in result.stderr


def test_insecure_allows_a_non_loopback_bind(tmp_path: Path) -> None:
    port = free_port()
    console = spawn_console(
        NO_BROKER, "", port, USERS, log_path=str(tmp_path / "c.log"), host="0.0.0.0", insecure=True
    )
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/state")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        request.add_header("Authorization", "Bearer bob-token-1")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        stop_process(console)
    assert "--insecure" in (tmp_path / "c.log").read_text()


def test_the_console_serves_https_with_a_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    console = spawn_console(
        NO_BROKER, "", port, USERS, log_path=str(tmp_path / "c.log"), tls=(cert, key),
        host="0.0.0.0",
    )  # fmt: skip
    try:
        trusted = ssl.create_default_context(cafile=cert)
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/api/state", headers={"Authorization": "Bearer bob-token-1"}
        )
        with urllib.request.urlopen(request, timeout=10, context=trusted) as response:
            assert response.status == 200 and b'"instruments"' in response.read()
        with pytest.raises(urllib.error.URLError):  # a client that does not trust it stops
            urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context())
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP beside it
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=10)
    finally:
        stop_process(console)
    assert f"https://0.0.0.0:{port}/" in (tmp_path / "c.log").read_text()
