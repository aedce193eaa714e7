"""The audit store: dedupe, queries, exports, append-only triggers, and verify catching any single
tampered, deleted or swapped record."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stubs import audit_bodies

from tickwise.schemas.decisions import AUDIT_ADAPTER, AuditRecord, HoldSummary
from tickwise.streams.audit.store import COLUMNS, Query, SqliteAuditStore, open_store


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    return audit_bodies()


@pytest.fixture(scope="module")
def master(bodies: list[bytes]) -> SqliteAuditStore:
    store = SqliteAuditStore(":memory:")
    store.append(bodies)
    return store


def copy_of(master: SqliteAuditStore) -> SqliteAuditStore:
    store = SqliteAuditStore(":memory:")
    master.conn.backup(store.conn)
    return store


def test_append_is_idempotent_and_verify_passes_on_an_untouched_store(bodies, master) -> None:
    assert len(bodies) > 200
    kinds = {type(AUDIT_ADAPTER.validate_json(b)) for b in bodies}
    assert kinds == {AuditRecord, HoldSummary}  # decisions' records and summaries of holds
    assert master.count() == len(bodies)
    assert master.append(bodies[:100]) == 0  # a redelivered batch adds nothing
    problems, heads = master.verify()
    assert problems == []
    assert sum(seq + 1 for seq, _ in heads.values()) == len(bodies)


def test_queries_by_time_instrument_and_model(master) -> None:
    every = list(master.records())
    mid = every[len(every) // 2].ts_event_ns
    later = list(master.records(Query(start_ns=mid)))
    assert later and all(r.ts_event_ns >= mid for r in later)
    assert len(later) + len(list(master.records(Query(end_ns=mid)))) == len(every)
    es = list(master.records(Query(instrument="ES", limit=50)))
    assert len(es) == 50 and {r.instrument for r in es} == {"ES"}
    assert [r.seq for r in es] == list(range(50))
    assert len(list(master.records(Query(model_id="logreg")))) == len(every)
    assert list(master.records(Query(model_id="nope"))) == []


def test_the_database_refuses_updates_and_deletes(master) -> None:
    store = copy_of(master)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE audit SET approved = 0 WHERE id = 5")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM audit WHERE id = 5")


def _tamper(store: SqliteAuditStore, kind: str, row_id: int) -> None:
    """What someone who owns the database file could do: drop the triggers, then edit."""
    db = store.conn
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    if kind == "edit":  # change what was decided (or how many holds), keep the stored hash
        db.execute(
            "UPDATE audit SET body = replace(replace(body, '\"quantity\":', '\"quantity\":1'), "
            "'\"holds\":', '\"holds\":1') WHERE id = ?",
            (row_id,),
        )
    elif kind == "edit_and_rehash":  # change the body and recompute its own hash
        from tickwise.streams.operators.audit import record_hash

        (body,) = db.execute("SELECT body FROM audit WHERE id = ?", (row_id,)).fetchone()
        r = AUDIT_ADAPTER.validate_json(body)
        if isinstance(r, AuditRecord):
            forged = r.model_copy(update={"features": {k: 0.0 for k in r.features}})
        else:
            forged = r.model_copy(update={"position": r.position + 1.0})
        forged = forged.model_copy(update={"hash": record_hash(forged)})
        db.execute(
            "UPDATE audit SET body = ?, hash = ? WHERE id = ?",
            (forged.model_dump_json(), forged.hash, row_id),
        )
    elif kind == "delete":
        db.execute("DELETE FROM audit WHERE id = ?", (row_id,))
    elif kind == "swap":  # exchange with the instrument's next record
        (instrument,) = db.execute(
            "SELECT instrument FROM audit WHERE id = ?", (row_id,)
        ).fetchone()
        (other,) = db.execute(
            "SELECT MIN(id) FROM audit WHERE instrument = ? AND id > ?", (instrument, row_id)
        ).fetchone()
        cols = ", ".join(COLUMNS)
        a = db.execute(f"SELECT {cols} FROM audit WHERE id = ?", (row_id,)).fetchone()
        b = db.execute(f"SELECT {cols} FROM audit WHERE id = ?", (other,)).fetchone()
        db.execute("DELETE FROM audit WHERE id IN (?, ?)", (row_id, other))
        marks = ", ".join("?" * 12)
        db.execute(f"INSERT INTO audit (id, {cols}) VALUES ({marks})", (row_id, *b))
        db.execute(f"INSERT INTO audit (id, {cols}) VALUES ({marks})", (other, *a))
    db.commit()


def _non_tail_ids(store: SqliteAuditStore) -> list[int]:
    """Rows that are not the last of their instrument (cutting a chain's tail needs the heads)."""
    return [
        row[0]
        for row in store.conn.execute(
            "SELECT id FROM audit a WHERE EXISTS "
            "(SELECT 1 FROM audit b WHERE b.instrument = a.instrument AND b.id > a.id) ORDER BY id"
        )
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["edit", "edit_and_rehash", "delete", "swap"]),
    pick=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_verify_fails_on_any_single_tampered_deleted_or_swapped_record(master, kind, pick) -> None:
    store = copy_of(master)
    ids = _non_tail_ids(store)
    _tamper(store, kind, ids[int(pick * len(ids))])
    problems, _ = store.verify()
    assert problems, f"{kind} went unnoticed"


def test_a_cut_tail_shows_in_the_heads(master) -> None:
    store = copy_of(master)
    _, heads = store.verify()
    store.conn.execute("DROP TRIGGER audit_no_delete")
    store.conn.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
    problems, cut = store.verify()
    assert problems == [] and cut != heads  # the chain is valid but its head moved back


def test_export_to_csv_and_parquet(master, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    n = master.export(tmp_path / "a.csv", "csv", Query(instrument="NQ"))
    with open(tmp_path / "a.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n > 0 and {r["instrument"] for r in rows} == {"NQ"}
    assert master.export(tmp_path / "a.parquet", "parquet") == master.count()
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.num_rows == master.count()
    assert table.column("seq").to_pylist()[:3] == [r.seq for r in list(master.records())[:3]]


def test_open_store_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")  # sqlite:////abs/path
    store.close()
    assert (tmp_path / "x.db").exists()
    assert open_store("sqlite://:memory:").count() == 0
