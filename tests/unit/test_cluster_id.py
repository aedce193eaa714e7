"""The cluster id a local broker's storage is formatted with."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tickwise.streams.live import broker


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # The storage tool took an id starting with "-" for an option and refused to format: one
    # first start of a broker in 64 failed so (a fault test found it).
    draws: Iterator[bytes] = iter([b"\xf8" + bytes(15), b"\xfb" + bytes(15), bytes(16)])
    monkeypatch.setattr(broker.secrets, "token_bytes", lambda n: next(draws))
    cluster_id = broker._cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(bytes(16)).rstrip(b"=").decode()
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
