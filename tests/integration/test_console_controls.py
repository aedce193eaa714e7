"""Console controls on the real broker: what reaches the ``control`` topic, and as whom."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tickwise.schemas.decisions import ControlCommand
from tickwise.schemas.topics import Topics
from tickwise.streams.config import ModelConfig, load_config
from tickwise.streams.console.server import Console
from tickwise.streams.live.admin import create_topics
from tickwise.streams.live.tap import consumer, messages
from tickwise.streams.registry import Registry
from tickwise.streams.web.auth import Users

pytestmark = [pytest.mark.kafka]

USERS = "alice:operator:alice-token-1,bob:viewer:bob-token-1"


def post_all(console: Console, requests: list[tuple[str, str, dict]]) -> list[tuple[int, dict]]:
    async def go() -> list[tuple[int, dict]]:
        client = TestClient(TestServer(console.app(background=False)))
        await client.start_server()
        out = []
        try:
            for path, token, body in requests:
                headers = {"Authorization": f"Bearer {token}"}
                response = await client.post(path, json=body, headers=headers)
                out.append((response.status, await response.json()))
        finally:
            await client.close()
        return out

    return asyncio.run(go())


def control_commands(bootstrap: str, topic: str, expected: int) -> list[ControlCommand]:
    c = consumer(bootstrap, [topic])
    try:
        found = []
        for msg in messages(c, idle_timeout=10, deadline=time.monotonic() + 30):
            found.append(ControlCommand.model_validate_json(msg.value()))
            if len(found) >= expected:
                break
        return found
    finally:
        c.close()


def test_controls_reach_the_topic_as_the_authenticated_operator(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, topic_prefix, partitions=1)
    registry = Registry(tmp_path / "registry")
    v1 = registry.register(ModelConfig(), "ann", "baseline")
    v2 = registry.register(ModelConfig(), "ann", "retrained", parent=v1.key)
    registry.promote(v1.key, "production", "ann", "first", 1)
    console = Console(
        kafka_bootstrap,
        load_config(topic_prefix=topic_prefix),
        Users.from_env_value(USERS),
        tmp_path / "registry",
    )
    spoof = {"operator": "mallory", "reason": "desk limit"}
    results = post_all(
        console,
        [
            ("/api/control/kill-switch", "alice-token-1", {**spoof, "state": "on", "scope": "ES"}),
            ("/api/control/promote", "alice-token-1", {**spoof, "model": v2.key}),
            ("/api/control/promote", "bob-token-1", {**spoof, "model": v1.key}),
            ("/api/control/rollback", "alice-token-1", spoof),
            ("/api/control/promote", "alice-token-1", {**spoof, "model": "nope:v9"}),
        ],
    )
    assert [status for status, _ in results] == [202, 202, 403, 202, 409]
    sent = control_commands(kafka_bootstrap, Topics(topic_prefix).control, 3)
    assert [c.command for c in sent] == ["kill_switch_on", "promote", "rollback"]
    assert {c.operator for c in sent} == {"alice"}  # the token's user, not the body's name
    assert [c.command_id for c in sent] == [body["command_id"] for s, body in results if s == 202]
    assert sent[1].model_id == v2.model_id and sent[1].model_version == v2.version
    assert sent[2].model_version == v1.version  # rolled back to the version v2 replaced
    history = [(e.model, e.operator) for e in registry.audit_trail() if e.event == "stage"]
    assert (v2.key, "alice") in history
