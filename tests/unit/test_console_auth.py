"""Console authentication: users from configuration, and control endpoints that refuse
anonymous and viewer requests (before anything reaches Kafka)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from tickwise.streams.config import TickwiseConfig
from tickwise.streams.console.server import Console
from tickwise.streams.web.auth import AuthConfigError, User, Users, bearer, hash_token

USERS = "alice:operator:alice-token-1,bob:viewer:bob-token-1"
CONTROLS = ("/api/control/kill-switch", "/api/control/promote", "/api/control/rollback")
BODY = {"state": "on", "scope": "global", "reason": "test", "model": "m:v2"}


def test_users_from_the_environment_value() -> None:
    users = Users.from_env_value(USERS)
    assert users.authenticate("alice-token-1") == User("alice", "operator")
    assert users.authenticate("bob-token-1") == User("bob", "viewer")
    assert users.authenticate("alice-token-2") is None
    assert users.authenticate(None) is None


def test_users_file_with_hashed_and_plain_tokens(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.alice]\nrole = "operator"\ntoken_sha256 = "{hash_token("long-secret-a")}"\n'
        '[users.bob]\nrole = "viewer"\ntoken = "long-secret-b"\n'
    )
    users = Users.load(str(path), env={})
    assert users.authenticate("long-secret-a") == User("alice", "operator")
    assert users.authenticate("long-secret-b") == User("bob", "viewer")
    assert users.authenticate(hash_token("long-secret-a")) is None  # the hash is no password
    assert Users.load(env={"TICKWISE_CONSOLE_USERS_FILE": str(path)}).authenticate(
        "long-secret-b"
    ) == User("bob", "viewer")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alice:admin:long-enough", "role"),
        ("alice:operator:short", "shorter"),
        ("alice-operator-token", "name:role:token"),
    ],
)
def test_bad_user_entries_are_refused_at_start(value: str, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        Users.from_env_value(value)


def test_a_users_file_needs_exactly_one_kind_of_token(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text('[users.alice]\nrole = "operator"\n')
    with pytest.raises(AuthConfigError, match="exactly one"):
        Users.from_file(path)


def test_no_users_configured_means_nobody_authenticates() -> None:
    users = Users.load(env={})
    assert len(users) == 0 and users.authenticate("anything-at-all") is None


@given(st.text(max_size=40))
def test_bearer_never_raises_and_only_reads_bearer_headers(header: str) -> None:
    token = bearer(header)
    assert token is None or (header.lower().startswith("bearer ") and token in header)


def call(users: Users, method: str, path: str, token: str | None, body: object = None):
    """One request to a console app with no background tasks (no broker involved)."""

    async def go() -> tuple[int, dict]:
        console = Console("127.0.0.1:1", TickwiseConfig(), users)
        client = TestClient(TestServer(console.app(background=False)))
        await client.start_server()
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.request(method, path, json=body, headers=headers)
            data = await response.json() if response.content_type == "application/json" else {}
            return response.status, data
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.mark.parametrize("path", CONTROLS)
def test_an_unauthenticated_control_request_is_401(path: str) -> None:
    users = Users.from_env_value(USERS)
    assert call(users, "POST", path, None, BODY)[0] == 401
    assert call(users, "POST", path, "not-a-known-token", BODY)[0] == 401


@pytest.mark.parametrize("path", CONTROLS)
def test_a_viewer_control_request_is_403(path: str) -> None:
    status, data = call(Users.from_env_value(USERS), "POST", path, "bob-token-1", BODY)
    assert status == 403 and "viewer" in data["error"]


@pytest.mark.parametrize("path", CONTROLS)
def test_an_operator_must_give_a_reason(path: str) -> None:
    body = {**BODY, "reason": "   "}
    status, data = call(Users.from_env_value(USERS), "POST", path, "alice-token-1", body)
    assert status == 400 and "reason" in data["error"]


def test_a_kill_switch_scope_must_be_global_or_an_instrument() -> None:
    body = {**BODY, "scope": "ES; DROP"}
    status, _ = call(Users.from_env_value(USERS), "POST", CONTROLS[0], "alice-token-1", body)
    assert status == 400


def test_with_no_users_no_control_is_possible() -> None:
    for path in CONTROLS:
        assert call(Users.load(env={}), "POST", path, "alice-token-1", BODY)[0] == 401


def test_whoami_names_the_user_of_the_token() -> None:
    users = Users.from_env_value(USERS)
    assert call(users, "GET", "/api/whoami", "bob-token-1") == (
        200,
        {"name": "bob", "role": "viewer"},
    )
    assert call(users, "GET", "/api/whoami", None)[0] == 401


def test_the_page_loads_without_login_but_the_state_does_not() -> None:
    users = Users.from_env_value(USERS)
    assert call(users, "GET", "/", None)[0] == 200
    assert call(users, "GET", "/api/state", None)[0] == 401
    status, state = call(users, "GET", "/api/state", "bob-token-1")
    assert status == 200 and state["instruments"] == {}


def test_the_console_role_reads_exactly_what_the_console_shows() -> None:
    # the secure profile's ACLs for the console come from ROLE_ACCESS; they must follow SPECS
    from tickwise.streams.console.view import SPECS
    from tickwise.streams.live.security import ROLE_ACCESS

    reads, writes = ROLE_ACCESS["console"]
    # and the registry's log, whose last entry it reads before publishing what follows it
    assert set(reads) == {spec.name for spec in SPECS} | {"registry"}
    assert writes == ("control", "registry")
