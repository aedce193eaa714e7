"""The audit store on a real PostgreSQL server, started by the test from Debian's packages.

The server runs from ``initdb``/``pg_ctl`` in a temporary directory on a free port (as the
``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root). Missing
server binaries fail the test: ``.ci/run`` installs them (``apt-get install postgresql``).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from stubs import audit_bodies

from tickwise.streams.audit.store import PostgresAuditStore, Query, open_store
from tickwise.streams.live.broker import free_port

psycopg = pytest.importorskip("psycopg")


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("PostgreSQL server binaries not found: apt-get install postgresql", pytrace=False)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="tickwise-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    run = lambda *c: subprocess.run(_as_server_user(list(c)), check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-U", "tickwise", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        opts,
        "-l",
        str(root / "log"),
        "-w",
        "-t",
        "60",
        "start",
    )
    try:
        yield f"postgresql://tickwise@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_store_dedupes_queries_verifies_and_detects_tampering(postgres_dsn: str) -> None:
    bodies = audit_bodies(count=1200)
    store = open_store(postgres_dsn)
    assert isinstance(store, PostgresAuditStore)
    assert store.append(bodies) == len(bodies)
    assert store.append(bodies[:50]) == 0
    assert store.verify()[0] == []
    es = list(store.records(Query(instrument="ES", limit=20)))
    assert [r.seq for r in es] == list(range(20))
    assert len(list(store.records(Query(model_id="logreg")))) == len(bodies)

    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        store.conn.execute("DELETE FROM audit WHERE id = 3")
    store.conn.rollback()
    store.conn.execute("DROP TRIGGER audit_append_only ON audit")
    store.conn.execute("DELETE FROM audit WHERE id = 3")
    store.conn.commit()
    problems, _ = store.verify()
    assert problems and "seq" in problems[0]
    store.close()
