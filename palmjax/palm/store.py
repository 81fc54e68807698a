"""Durable field-sample store for the tuning loop (palm patent step P6).

In the field, a device's verdict is reviewed by a person; the capture, its true label, the
device's verdict and probability, the device id and the time are recorded here. Every
record is kept (nothing is ever deleted or overwritten); tuning reads the records whose
verdict disagreed with the true label.

Storage is SQLite (one file) in WAL mode with ``synchronous=FULL``: each ``add`` is one
transaction, so concurrent writers (threads or processes) serialise on SQLite's lock and a
killed process leaves either the whole record or none of it. Images are kept losslessly as
the exact float32 pixels the pipeline saw (``.npy`` bytes, with the source bit depth and a
SHA-256 of the pixel bytes checked on read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import sqlite3
import time
from typing import Any, Iterator

import numpy as np

from palmjax.errors import InputError, check_image_array

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created REAL NOT NULL,
  device_id TEXT NOT NULL,
  label INTEGER NOT NULL CHECK (label IN (0, 1)),
  verdict INTEGER CHECK (verdict IN (0, 1)),
  probability REAL,
  mistake INTEGER NOT NULL CHECK (mistake IN (0, 1)),
  height INTEGER NOT NULL,
  width INTEGER NOT NULL,
  channels INTEGER NOT NULL,
  bit_depth INTEGER NOT NULL,
  pixels BLOB NOT NULL,
  sha256 TEXT NOT NULL,
  source TEXT,
  model TEXT
);
CREATE INDEX IF NOT EXISTS samples_mistake ON samples (mistake, id);
"""

LABELS = {"live": 1, "spoof": 0}


@dataclasses.dataclass(frozen=True)
class FieldSample:
  id: int
  created: float
  device_id: str
  label: int
  verdict: int | None
  probability: float | None
  mistake: bool
  pixels: np.ndarray
  bit_depth: int
  source: str | None
  model: str | None


def _encode(pixels: np.ndarray) -> tuple[bytes, str]:
  buf = io.BytesIO()
  np.save(buf, np.ascontiguousarray(pixels, np.float32), allow_pickle=False)
  data = buf.getvalue()
  return data, hashlib.sha256(data).hexdigest()


def _writable(path: str) -> bool:
  effective = os.access in os.supports_effective_ids
  return os.access(path, os.W_OK, effective_ids=effective)


class FieldStore:
  """A SQLite field-sample store at ``path`` (created on first use)."""

  def __init__(self, path: str | os.PathLike, *, timeout: float = 60.0, create: bool = True):
    """Opens the store at ``path`` to add samples: creates it (and its folders), and
    refuses a store it cannot write, before any sample is judged. ``create=False`` opens an
    existing store to read it (a missing one is an :class:`InputError`)."""
    from palmjax.io import make_parent_dirs
    self.path = os.fspath(path)
    existed = os.path.exists(self.path)
    if existed and not os.path.isfile(self.path):
      raise InputError(f"{self.path}: is not a file; give the field store's file name")
    if not existed and not create:
      raise InputError(f"{self.path}: no such field store (record samples into it with "
                       "`palmjax palm feedback` first)")
    make_parent_dirs(self.path)
    try:
      self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
      self._db.execute("PRAGMA journal_mode=WAL")
      self._db.execute("PRAGMA synchronous=FULL")
      self._db.executescript(_SCHEMA)
      if create and existed and not _writable(self.path):  # fail now, not at the first add
        raise sqlite3.OperationalError("attempt to write a readonly database")
    except sqlite3.OperationalError as e:
      if "readonly" in str(e) or "unable to open" in str(e):
        raise InputError(f"{self.path}: cannot write the field store (read-only file or "
                         f"folder, or no permission: {e})") from None
      raise InputError(f"{self.path}: not a palmjax field store ({e})") from None
    except sqlite3.DatabaseError as e:
      raise InputError(f"{self.path}: not a palmjax field store ({e})") from None
    if existed:  # a damaged store must not take new samples (they could be lost)
      try:
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
      except sqlite3.DatabaseError as e:
        check = str(e)
      if check != "ok":
        self._db.close()
        raise InputError(f"{self.path}: the field store is damaged (SQLite quick_check: "
                         f"{check}); restore it from a backup before adding samples")

  def close(self) -> None:
    self._db.close()

  def __enter__(self) -> "FieldStore":
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()

  def add(self, pixels: Any, *, label: int | str, verdict: int | None,
          probability: float | None = None, device_id: str = "unknown", bit_depth: int = 8,
          source: str | None = None, model: str | None = None,
          created: float | None = None) -> int:
    """Records one reviewed capture; returns its id. ``mistake = verdict != label``.

    ``verdict`` may be None (the device gave none, e.g. a re-capture request): such a
    record is kept but never counts as a mistake.
    """
    if isinstance(label, str):
      if label not in LABELS:
        raise InputError(f"label must be 'live' or 'spoof' (or 1/0), got {label!r}")
      label = LABELS[label]
    if label not in (0, 1):
      raise InputError(f"label must be 1 (live) or 0 (spoof), got {label!r}")
    if verdict is not None and verdict not in (0, 1):
      raise InputError(f"verdict must be 1 (live), 0 (spoof) or None, got {verdict!r}")
    arr = check_image_array(pixels, source or "pixels")
    if arr.dtype.kind == "f" and (arr.min() < 0 or arr.max() > 1):
      raise InputError(f"{source or 'pixels'}: float pixels must lie in [0, 1]")
    data, digest = _encode(arr)
    mistake = int(verdict is not None and verdict != label)
    try:
      cur = self._db.execute(
          "INSERT INTO samples (created, device_id, label, verdict, probability, mistake, "
          "height, width, channels, bit_depth, pixels, sha256, source, model) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          (time.time() if created is None else created, device_id, int(label), verdict,
           None if probability is None else float(probability), mistake, arr.shape[0],
           arr.shape[1], arr.shape[2], int(bit_depth), data, digest, source, model))
    except sqlite3.OperationalError as e:  # read-only, full disk, locked: name the store
      raise InputError(f"{self.path}: cannot write the field store ({e})") from None
    return int(cur.lastrowid)

  def _rows(self, where: str, args: tuple = ()) -> Iterator[FieldSample]:
    cur = self._db.execute(
        "SELECT id, created, device_id, label, verdict, probability, mistake, height, width, "
        f"channels, bit_depth, pixels, sha256, source, model FROM samples {where} ORDER BY id",
        args)
    for row in cur:
      (id_, created, dev, label, verdict, prob, mistake, h, w, c, depth, blob, digest,
       source, model) = row
      if hashlib.sha256(blob).hexdigest() != digest:
        raise InputError(f"{self.path}: record {id_} is corrupt (checksum mismatch)")
      pixels = np.load(io.BytesIO(blob), allow_pickle=False)
      if pixels.shape != (h, w, c):
        raise InputError(f"{self.path}: record {id_} has shape {pixels.shape}, "
                         f"expected {(h, w, c)}")
      yield FieldSample(id_, created, dev, label, verdict, prob, bool(mistake), pixels, depth,
                        source, model)

  def all(self) -> list[FieldSample]:
    return list(self._rows(""))

  def mistakes(self, *, after_id: int = 0) -> list[FieldSample]:
    """Records whose verdict disagreed with the true label (the tuning samples)."""
    return list(self._rows("WHERE mistake = 1 AND id > ?", (after_id,)))

  def counts(self) -> dict[str, int]:
    total, mistakes = self._db.execute(
        "SELECT COUNT(*), COALESCE(SUM(mistake), 0) FROM samples").fetchone()
    return {"records": int(total), "mistakes": int(mistakes)}

  def integrity_ok(self) -> bool:
    return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
