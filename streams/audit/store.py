"""The audit store: audit records kept append-only, queryable by time, instrument and model.

SQLite (the standard library) is the default; PostgreSQL is supported through psycopg 3. Each
row keeps the record's exact JSON (``body``) next to the columns queries filter on, and rows
are append-only: inserts ignore an ``audit_id`` already stored (the live worker is
at-least-once, so a record can arrive twice), and database triggers refuse UPDATE and DELETE.

``verify`` does not trust the triggers (whoever owns the database can drop them): it re-reads
every row in insertion order and checks each instrument's hash chain, so a modified, deleted
or reordered record is found. Cutting records off the *end* of a chain leaves a shorter valid
chain; compare the heads ``verify`` prints with the last records on the ``audit`` topic (or
another copy) to catch that.

Examples
--------
>>> store = open_store("sqlite://:memory:")
>>> store.count()
0
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickwise.schemas.decisions import AUDIT_ADAPTER, HoldSummary
from tickwise.streams.operators.audit import Entry, HoldTally, check_link

COLUMNS = (
    "audit_id",
    "instrument",
    "seq",
    "ts_event_ns",
    "model_id",
    "model_version",
    "approved",
    "action",
    "hash",
    "prev_hash",
    "body",
)
EXPORT_COLUMNS = (
    "audit_id",
    "instrument",
    "seq",
    "ts_event_ns",
    "model_id",
    "model_version",
    "score",
    "side",
    "action",
    "quantity",
    "price",
    "approved",
    "reject_reasons",
    "trading_state",
    "order_id",
    "fill_ids",
    "controls_applied",
    "hash",
    "prev_hash",
    "body",
)


@dataclass(frozen=True)
class Query:
    """Filters of ``show`` and ``export``: an event-time range, an instrument, a model."""

    start_ns: int | None = None
    end_ns: int | None = None
    instrument: str | None = None
    model_id: str | None = None
    limit: int | None = None


HOLD_SUMMARY = "HOLD_SUMMARY"  # the action column of a summary of holds


def _columns(r: Entry) -> tuple[Any, ...]:
    """The indexed columns of an entry: a summary is its model's approved HOLDs."""
    if isinstance(r, HoldSummary):
        model, approved, action = (r.model_id, r.model_version), True, HOLD_SUMMARY
    else:
        d = r.decision
        model, approved, action = (d.model_id, d.model_version), d.approved, d.action.value
    return (r.audit_id, r.instrument, r.seq, r.ts_event_ns, *model, approved, action, r.hash)


def _row(body: bytes | str) -> tuple[Any, ...]:
    text = body.decode() if isinstance(body, bytes) else body
    r = AUDIT_ADAPTER.validate_json(text)
    return (*_columns(r), r.prev_hash, text)


class AuditStore:
    """Common logic; subclasses give the SQL dialect and the connection."""

    placeholder = "?"
    ddl: tuple[str, ...] = ()
    insert_sql = ""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        cur = self.conn.cursor()
        for statement in self.ddl:
            cur.execute(statement)
        self.conn.commit()

    def append(self, bodies: Iterable[bytes | str]) -> int:
        """Insert records (their exact JSON); return how many were new."""
        rows = [_row(b) for b in bodies]
        if not rows:
            return 0
        before = self.count()
        cur = self.conn.cursor()
        cur.executemany(self.insert_sql, rows)
        self.conn.commit()
        return self.count() - before

    def count(self) -> int:
        cur = self.conn.cursor()
        cur.execute("SELECT COUNT(*) FROM audit")
        return int(cur.fetchone()[0])

    def rows(self, query: Query = Query()) -> Iterator[tuple[Any, ...]]:
        """Matching rows in insertion order."""
        p = self.placeholder
        where, args = [], []
        for column, op, value in (
            ("ts_event_ns", ">=", query.start_ns),
            ("ts_event_ns", "<", query.end_ns),
            ("instrument", "=", query.instrument),
            ("model_id", "=", query.model_id),
        ):
            if value is not None:
                where.append(f"{column} {op} {p}")
                args.append(value)
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        cur = self.conn.cursor()
        cur.execute(sql, args)
        yield from cur

    def records(self, query: Query = Query()) -> Iterator[Entry]:
        for row in self.rows(query):
            yield AUDIT_ADAPTER.validate_json(row[-1])

    def verify(self) -> tuple[list[str], dict[str, tuple[int, str]]]:
        """Check every chain in insertion order, and that its hold summaries account for every
        decided tick (``HoldTally``); return (problems, head per instrument)."""
        problems: list[str] = []
        heads: dict[str, tuple[int, str]] = {}
        tally = HoldTally()
        for row in self.rows():
            audit_id, instrument, seq, ts, model_id, version, approved, action, h, prev, body = row
            try:
                r = AUDIT_ADAPTER.validate_json(body)
            except ValueError as exc:
                problems.append(
                    f"{audit_id}: body is not an audit record ({exc.__class__.__name__})"
                )
                continue
            columns = (audit_id, instrument, seq, ts, model_id, version, bool(approved), action, h)
            if columns != _columns(r) or prev != r.prev_hash:
                problems.append(f"{audit_id}: indexed columns differ from the record's body")
            problems += check_link(r, heads, body.encode() if isinstance(body, str) else body)
            problems += tally.add(r)
        return problems, heads

    def export(self, path: Path, fmt: str, query: Query = Query()) -> int:
        """Write matching records as CSV or Parquet; return how many."""
        rows = [_export_row(r) for r in self.records(query)]
        if fmt == "csv":
            with open(path, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(EXPORT_COLUMNS)
                writer.writerows(rows)
        elif fmt == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError as exc:  # optional: pip install 'tickwise[parquet]'
                raise RuntimeError("Parquet export needs pyarrow: pip install pyarrow") from exc
            table = pa.table({c: [row[i] for row in rows] for i, c in enumerate(EXPORT_COLUMNS)})
            pq.write_table(table, path)
        else:
            raise ValueError(f"unknown export format {fmt!r}")
        return len(rows)

    def close(self) -> None:
        self.conn.close()


def _export_row(r: Entry) -> tuple[Any, ...]:
    if isinstance(r, HoldSummary):  # no signal, order, fill or control: the run's figures
        return (
            *_columns(r)[:6],
            None,
            None,
            HOLD_SUMMARY,
            0.0,
            None,
            True,
            "",
            r.trading_state.value,
            "",
            "",
            "",
            r.hash,
            r.prev_hash,
            r.model_dump_json(),
        )
    d, s = r.decision, r.signal
    return (
        r.audit_id,
        r.instrument,
        r.seq,
        r.ts_event_ns,
        d.model_id,
        d.model_version,
        s.score,
        s.side.value,
        d.action.value,
        d.quantity,
        d.price,
        d.approved,
        ";".join(d.reject_reasons),
        r.trading_state.value,
        r.order.order_id if r.order else "",
        ";".join(f.fill_id for f in r.fills),
        ";".join(c.command_id for c in r.controls_applied),
        r.hash,
        r.prev_hash,
        r.model_dump_json(),
    )


class SqliteAuditStore(AuditStore):
    """The default store: one SQLite file (or ``:memory:``)."""

    ddl = (
        """CREATE TABLE IF NOT EXISTS audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            audit_id TEXT NOT NULL UNIQUE, instrument TEXT NOT NULL, seq INTEGER NOT NULL,
            ts_event_ns INTEGER NOT NULL, model_id TEXT NOT NULL, model_version INTEGER NOT NULL,
            approved INTEGER NOT NULL, action TEXT NOT NULL, hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL, body TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_by_instrument ON audit (instrument, ts_event_ns)",
        "CREATE INDEX IF NOT EXISTS audit_by_model ON audit (model_id, ts_event_ns)",
        "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (ts_event_ns)",
        """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit store is append-only'); END""",
        """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit store is append-only'); END""",
    )
    insert_sql = (
        f"INSERT OR IGNORE INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 11)})"
    )

    def __init__(self, path: str) -> None:
        super().__init__(sqlite3.connect(path))


class PostgresAuditStore(AuditStore):
    """PostgreSQL through psycopg 3 (``pip install 'tickwise[postgres]'``)."""

    placeholder = "%s"
    ddl = (
        """CREATE TABLE IF NOT EXISTS audit (
            id BIGSERIAL PRIMARY KEY,
            audit_id TEXT NOT NULL UNIQUE, instrument TEXT NOT NULL, seq BIGINT NOT NULL,
            ts_event_ns BIGINT NOT NULL, model_id TEXT NOT NULL, model_version INTEGER NOT NULL,
            approved BOOLEAN NOT NULL, action TEXT NOT NULL, hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL, body TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_by_instrument ON audit (instrument, ts_event_ns)",
        "CREATE INDEX IF NOT EXISTS audit_by_model ON audit (model_id, ts_event_ns)",
        "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (ts_event_ns)",
        """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'the audit store is append-only'; END $$ LANGUAGE plpgsql""",
        """CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
            FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
    )
    insert_sql = (
        f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 11)}) "
        "ON CONFLICT (audit_id) DO NOTHING"
    )

    def __init__(self, dsn: str) -> None:
        import psycopg  # optional dependency, only for PostgreSQL

        super().__init__(psycopg.connect(dsn))


def open_store(url: str) -> AuditStore:
    """Open ``postgresql://...``, ``sqlite:///relative.db``, ``sqlite:////abs.db``,
    ``sqlite://:memory:`` or a plain file path (SQLite)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditStore(url)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        return SqliteAuditStore(path[1:] if path.startswith("/") else path)
    return SqliteAuditStore(url)
