"""DuckDB: the system of record. Schema, connections and the few reads/writes everything uses.

DuckDB allows one writing process per file, so every connection here is short-lived and opened
through :meth:`Store.connect`, which retries while another process (the UI, a second CLI run)
holds the lock. Writes are idempotent upserts keyed by content, so a rerun never duplicates rows.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from askhint_assets.errors import AskHintError
from askhint_assets.file_lock import exclusive

SCHEMA_VERSION = 4  # 2: predictions.score_reason; 3: server_probes; 4: predictions.score_path

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS schema_info (version INTEGER, applied_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS prompt_versions (
        version VARCHAR PRIMARY KEY, prompt_set VARCHAR, kind VARCHAR, parent VARCHAR,
        produced_by VARCHAR, content JSON, files JSON, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS question_embeddings (
        prompt_version VARCHAR, embedder VARCHAR, question_id VARCHAR, class VARCHAR,
        question VARCHAR, embedding FLOAT[], PRIMARY KEY (prompt_version, embedder, question_id))""",
    """CREATE TABLE IF NOT EXISTS question_clusters (
        clustering_id VARCHAR, prompt_version VARCHAR, question_id VARCHAR, class VARCHAR,
        question VARCHAR, cluster INTEGER, was_noise BOOLEAN, settings JSON,
        PRIMARY KEY (clustering_id, question_id))""",
    """CREATE TABLE IF NOT EXISTS question_sets (
        question_set VARCHAR PRIMARY KEY, questions VARCHAR[], prompt_set VARCHAR,
        prompt_version VARCHAR, clustering_id VARCHAR, settings JSON, method VARCHAR,
        created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS videos (
        dataset VARCHAR, video_id VARCHAR, label VARCHAR, classes VARCHAR[], intervals JSON,
        num_frames INTEGER, fps DOUBLE, path VARCHAR, file_key VARCHAR, status VARCHAR,
        reason VARCHAR, PRIMARY KEY (dataset, video_id))""",
    """CREATE TABLE IF NOT EXISTS plans (
        plan VARCHAR PRIMARY KEY, granularity VARCHAR, settings JSON, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS scoring_units (
        dataset VARCHAR, plan VARCHAR, video_id VARCHAR, unit INTEGER, start_frame INTEGER,
        end_frame INTEGER, frames_key VARCHAR, frame_indices INTEGER[], frames_fps DOUBLE,
        PRIMARY KEY (dataset, plan, video_id, unit))""",
    """CREATE TABLE IF NOT EXISTS responses (
        request_hash VARCHAR PRIMARY KEY, backend VARCHAR, model VARCHAR, text VARCHAR,
        choice_logprobs JSON, fingerprint JSON, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS model_calls (
        call_id VARCHAR PRIMARY KEY, request_hash VARCHAR, backend VARCHAR, model VARCHAR,
        latency_s DOUBLE, ok BOOLEAN, error VARCHAR, run_id VARCHAR, fingerprint JSON,
        created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS predictions (
        dataset VARCHAR, plan VARCHAR, video_id VARCHAR, unit INTEGER, start_frame INTEGER,
        end_frame INTEGER, question_set VARCHAR, model VARCHAR, template VARCHAR, score DOUBLE,
        score_source VARCHAR, answer VARCHAR, group_name VARCHAR, rationale VARCHAR,
        parse_ok BOOLEAN, raw_stage1 VARCHAR, raw_stage2 VARCHAR, stage1_request VARCHAR,
        stage2_request VARCHAR, templates_version VARCHAR, run_id VARCHAR, created_at TIMESTAMP,
        score_reason VARCHAR, score_path VARCHAR,
        PRIMARY KEY (dataset, plan, video_id, unit, question_set, model, template))""",
    """CREATE TABLE IF NOT EXISTS eval_reports (
        report_id VARCHAR, created_at TIMESTAMP, dataset VARCHAR, question_set VARCHAR,
        model VARCHAR, template VARCHAR, granularity VARCHAR, metric VARCHAR, value DOUBLE,
        n_videos INTEGER, n_frames BIGINT, smoke_model BOOLEAN, source VARCHAR, plan VARCHAR,
        templates_version VARCHAR, eval_settings JSON,
        PRIMARY KEY (report_id, metric))""",
    """CREATE TABLE IF NOT EXISTS server_probes (
        base_url VARCHAR PRIMARY KEY, state JSON, probed_at TIMESTAMP)""",
]

MIGRATIONS: dict[int, list[str]] = {  # version -> statements that bring a database of the version before to it
    2: ["ALTER TABLE predictions ADD COLUMN IF NOT EXISTS score_reason VARCHAR"],
    3: ["""CREATE TABLE IF NOT EXISTS server_probes (base_url VARCHAR PRIMARY KEY, state JSON, probed_at TIMESTAMP)"""],
    4: ["ALTER TABLE predictions ADD COLUMN IF NOT EXISTS score_path VARCHAR"],  # follow-ups: joint or per_question
}

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


class StoreError(AskHintError):
    """The database could not be opened or written (locked too long, read-only, disk full)."""


def _insert(con: duckdb.DuckDBPyConnection, table: str, df: pl.DataFrame, replace: bool) -> None:
    """Insert a polars frame's columns into ``table`` (``INSERT OR REPLACE`` with ``replace``)."""
    cols = ", ".join(df.columns)
    con.register("_rows", df.to_arrow())
    con.execute(f"INSERT {'OR REPLACE ' if replace else ''}INTO {table} ({cols}) SELECT {cols} FROM _rows")
    con.unregister("_rows")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Store:
    """Short-lived DuckDB connections to one database file, with lock retries."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a connection, waiting (with jittered backoff) while another process holds the lock."""
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no database yet; materialize the assets first")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"{self.path.parent}: cannot create the folder ({e.strerror})") from e
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as e:
                msg = str(e)
                if any(m in msg for m in _LOCK_MARKERS) and time.monotonic() < deadline:
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                raise StoreError(f"{self.path}: cannot open the database: {msg}") from e
        try:
            if not read_only and not self._schema_ready:
                for stmt in SCHEMA:
                    con.execute(stmt)
                version = con.execute("SELECT max(version) FROM schema_info").fetchone()[0]
                for v in range((version or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):
                    for stmt in MIGRATIONS.get(v, []):
                        con.execute(stmt)
                if version != SCHEMA_VERSION:
                    con.execute("INSERT INTO schema_info VALUES (?, ?)", [SCHEMA_VERSION, now()])
                self._schema_ready = True
            yield con
        except duckdb.IOException as e:
            raise StoreError(f"{self.path}: write failed: {e}") from e
        finally:
            con.close()

    @contextmanager
    def request_locks(self, request_hashes: Sequence[str]) -> Iterator[None]:
        """Hold the inter-process locks of these model requests (``<db>.requests.locks/<stripe>``).

        Requests are locked by stripe (the first three hex digits of their hash, 4096 stripes), taken in
        sorted order so two holders never deadlock. Two runs that want the same request take turns, so a
        request one of them answered is a cache hit for the other, never sent twice; runs (or shards of
        one run) asking different requests rarely share a stripe and go on in parallel. ``flock`` dies
        with its process: a killed run leaves no lock.
        """
        folder = self.path.with_name(self.path.name + ".requests.locks")
        with ExitStack() as held:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for stripe in sorted({h[:3] for h in request_hashes}):
                    held.enter_context(exclusive(folder / stripe))
            except OSError as e:
                raise StoreError(f"{folder}: cannot take the request locks ({e.strerror})") from e
            yield

    # -- generic helpers -------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a read query and return a polars frame (through Arrow)."""
        with self.connect() as con:
            return con.execute(sql, params or []).pl()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self.connect() as con:
            row = con.execute(sql, params or []).fetchone()
        return row[0] if row else None

    def upsert(self, table: str, rows: list[dict[str, Any]] | pl.DataFrame) -> int:
        """INSERT OR REPLACE rows (dicts or a polars frame) into ``table``; returns the row count."""
        df = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, infer_schema_length=None)
        if df.height == 0:
            return 0
        with self.connect() as con:
            _insert(con, table, df, replace=True)
        return df.height

    def replace_where(self, table: str, where: str, params: Sequence[Any], rows: list[dict[str, Any]]) -> None:
        """Delete the rows matching ``where`` and insert ``rows``, in one transaction."""
        df = pl.DataFrame(rows, infer_schema_length=None)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
            if df.height:
                _insert(con, table, df, replace=False)
            con.execute("COMMIT")

    # -- the response cache ----------------------------------------------------------------

    def cached_responses(self, request_hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored responses for the given request hashes (absent ones are simply missing)."""
        if not request_hashes:
            return {}
        with self.connect() as con:
            con.register("_keys", pl.DataFrame({"h": list(request_hashes)}).to_arrow())
            rows = con.execute(
                "SELECT r.request_hash, r.text, r.choice_logprobs FROM responses r "
                "JOIN _keys k ON r.request_hash = k.h"
            ).fetchall()
            con.unregister("_keys")
        return {
            h: {"text": t, "choice_logprobs": json.loads(lp) if lp else None} for h, t, lp in rows
        }

    def responses_per_fingerprint(self) -> dict[str, int]:
        """How many responses the cache holds per backend fingerprint (the JSON text as stored)."""
        df = self.query("SELECT fingerprint, count(*) AS n FROM responses GROUP BY fingerprint")
        return {r["fingerprint"] or "{}": int(r["n"]) for r in df.iter_rows(named=True)}

    def server_probes(self, base_urls: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The remembered probe results of these servers (absent ones are missing)."""
        if not base_urls:
            return {}
        rows = self.query("SELECT base_url, state FROM server_probes WHERE list_contains(?, base_url)",
                          [list(base_urls)])
        return {r["base_url"]: json.loads(r["state"]) for r in rows.iter_rows(named=True)}

    def remember_server_probes(self, state: dict[str, dict[str, Any]]) -> None:
        """Keep the probe results of servers (one row per base URL, replaced)."""
        if state:
            ts = now()
            self.upsert("server_probes", [{"base_url": u, "state": json.dumps(d, sort_keys=True), "probed_at": ts}
                                          for u, d in state.items()])

    def record_calls(self, responses: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
        """Store successful responses and log every request sent, in one transaction."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            for table, rows in (("responses", responses), ("model_calls", calls)):
                if rows:
                    _insert(con, table, pl.DataFrame(rows, infer_schema_length=None), replace=True)
            con.execute("COMMIT")
