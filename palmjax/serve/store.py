"""The audit store: every decision the server answers, committed before its response.

One row per decision: the request id, the key that asked, the pipeline (palm / face), the
decision, P(live), the reason, the model versions, the full record (all intermediate
values, as ``palmjax palm detect`` / ``palmjax face check`` print it) and, for palm, the
capture the pipeline saw (float32 ``.npy`` bytes, so a reviewer's label can go to the P6
field store).

:class:`AuditStore` is the interface; :func:`open_store` picks the implementation from the
location: a file path -> :class:`SQLiteAuditStore` (WAL, ``synchronous=FULL``: a committed
record survives a killed process), ``postgresql://...`` -> :class:`PostgresAuditStore`
(psycopg; for several servers sharing one store). Both run the same SQL through DB-API.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sqlite3
import threading
from typing import Any, Sequence

import numpy as np

from palmjax.errors import InputError


@dataclasses.dataclass(frozen=True)
class AuditRecord:
  id: str
  created: float
  key_id: str
  kind: str                      # palm | face
  decision: str
  probability: float | None
  reason: str
  models: dict[str, Any]
  record: dict[str, Any]
  capture: np.ndarray | None = None

  def to_dict(self) -> dict[str, Any]:
    """The JSON view (without the capture pixels)."""
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "capture"}
    d["has_capture"] = self.capture is not None
    return d


def _npy(x: np.ndarray | None) -> bytes | None:
  if x is None:
    return None
  buf = io.BytesIO()
  np.save(buf, np.ascontiguousarray(x, np.float32), allow_pickle=False)
  return buf.getvalue()


_COLUMNS = ("id", "created", "key_id", "kind", "decision", "probability", "reason", "models",
            "record", "capture")


class AuditStore:
  """Interface and shared SQL of the audit stores (DB-API connection in ``self._db``).

  Subclasses set ``_ph`` (the parameter placeholder), ``_blob`` / ``_real`` (column types)
  and open ``self._db``; all methods are thread-safe (one lock around the connection).
  """

  _ph = "?"
  _blob = "BLOB"
  _real = "REAL"
  location = ""

  def __init__(self):
    self._lock = threading.Lock()

  def _schema(self) -> list[str]:
    return [f"CREATE TABLE IF NOT EXISTS decisions (id TEXT PRIMARY KEY, created {self._real} "
            "NOT NULL, key_id TEXT NOT NULL, kind TEXT NOT NULL, decision TEXT NOT NULL, "
            f"probability {self._real}, reason TEXT NOT NULL, models TEXT NOT NULL, record "
            f"TEXT NOT NULL, capture {self._blob})",
            "CREATE INDEX IF NOT EXISTS decisions_created ON decisions (created)"]

  def _execute(self, sql: str, args: Sequence = ()) -> list[tuple]:
    raise NotImplementedError

  def _commit_many(self, sql: str, rows: list[tuple]) -> None:
    raise NotImplementedError

  def add_many(self, records: Sequence[AuditRecord]) -> None:
    """Commits ``records`` in one transaction (all or none) before returning."""
    if not records:
      return
    sql = (f"INSERT INTO decisions ({', '.join(_COLUMNS)}) VALUES "
           f"({', '.join([self._ph] * len(_COLUMNS))})")
    rows = [(r.id, float(r.created), r.key_id, r.kind, r.decision,
             None if r.probability is None else float(r.probability), r.reason,
             json.dumps(r.models, default=float), json.dumps(r.record, default=float),
             _npy(r.capture)) for r in records]
    with self._lock:
      self._commit_many(sql, rows)

  def add(self, record: AuditRecord) -> None:
    self.add_many([record])

  def _decode(self, row: tuple) -> AuditRecord:
    id_, created, key_id, kind, decision, prob, reason, models, record, capture = row
    cap = None if capture is None else np.load(io.BytesIO(bytes(capture)), allow_pickle=False)
    return AuditRecord(id_, float(created), key_id, kind, decision, prob, reason,
                       json.loads(models), json.loads(record), cap)

  def get(self, record_id: str) -> AuditRecord | None:
    with self._lock:
      rows = self._execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE id = {self._ph}",
                           (record_id,))
    return self._decode(rows[0]) if rows else None

  def list(self, *, since: float | None = None, limit: int = 50) -> list[AuditRecord]:
    """Records created after ``since`` (Unix seconds), newest first, at most ``limit``."""
    with self._lock:
      rows = self._execute(
          f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE created > {self._ph} "
          f"ORDER BY created DESC, id DESC LIMIT {self._ph}",
          (-1.0 if since is None else float(since), int(limit)))
    return [self._decode(r) for r in rows]

  def ids(self) -> set[str]:
    with self._lock:
      return {r[0] for r in self._execute("SELECT id FROM decisions")}

  def close(self) -> None:
    with self._lock:
      self._db.close()

  def __enter__(self) -> "AuditStore":
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()


class SQLiteAuditStore(AuditStore):
  """One SQLite file in WAL mode with ``synchronous=FULL``."""

  def __init__(self, path: str | os.PathLike, *, timeout: float = 60.0):
    super().__init__()
    self.location = os.fspath(path)
    if os.path.exists(self.location) and not os.path.isfile(self.location):
      raise InputError(f"{self.location}: is not a file; give the audit store's file name")
    os.makedirs(os.path.dirname(os.path.abspath(self.location)), exist_ok=True)
    try:
      self._db = sqlite3.connect(self.location, timeout=timeout, isolation_level=None,
                                 check_same_thread=False)
      self._db.execute("PRAGMA journal_mode=WAL")
      self._db.execute("PRAGMA synchronous=FULL")
      for s in self._schema():
        self._db.execute(s)
    except sqlite3.DatabaseError as e:
      raise InputError(f"{self.location}: cannot open the audit store ({e})") from None

  def _execute(self, sql, args=()):
    return self._db.execute(sql, args).fetchall()

  def _commit_many(self, sql, rows):
    self._db.execute("BEGIN IMMEDIATE")
    try:
      self._db.executemany(sql, rows)
      self._db.execute("COMMIT")
    except BaseException:
      self._db.execute("ROLLBACK")
      raise


class PostgresAuditStore(AuditStore):
  """A PostgreSQL database (``postgresql://user@host/db``) through psycopg 3."""

  _ph = "%s"
  _blob = "BYTEA"
  _real = "DOUBLE PRECISION"

  def __init__(self, url: str):
    super().__init__()
    from palmjax.extras import require
    psycopg = require("psycopg", "the PostgreSQL audit store")
    self.location = url
    try:
      self._db = psycopg.connect(url, autocommit=False)
      with self._db.transaction():
        for s in self._schema():
          self._db.execute(s)
    except psycopg.Error as e:
      raise InputError(f"{url}: cannot open the PostgreSQL audit store ({e})") from None

  def _execute(self, sql, args=()):
    with self._db.transaction():
      cur = self._db.execute(sql, args)
      return cur.fetchall() if cur.description else []

  def _commit_many(self, sql, rows):
    with self._db.transaction():
      with self._db.cursor() as cur:
        cur.executemany(sql, rows)


def open_store(location: str | os.PathLike) -> AuditStore:
  """``postgresql://...`` (or ``postgres://``) -> PostgreSQL; anything else a SQLite file."""
  loc = os.fspath(location)
  if loc.startswith(("postgresql://", "postgres://")):
    return PostgresAuditStore(loc)
  return SQLiteAuditStore(loc)

