"""Per-terminal API keys: ``keys.toml`` holds one table per key with its role and a hash.

A key is ``pj_`` + 32 random bytes (URL-safe base64); only its SHA-256 is stored (a salted
slow hash buys nothing for 256-bit random tokens). Look-ups compare every stored hash with
:func:`hmac.compare_digest`. Roles: ``terminal`` (detect / check) and ``reviewer``
(feedback / records / review).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import time
import tomllib

from palmjax.errors import InputError

ROLES = ("terminal", "reviewer")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclasses.dataclass(frozen=True)
class Key:
  name: str
  role: str
  hash: str
  created: float = 0.0


def hash_token(token: str) -> str:
  return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def load_keys(path: str | os.PathLike) -> dict[str, Key]:
  """The keys in ``path`` by name (an absent file holds none)."""
  p = os.fspath(path)
  if not os.path.exists(p):
    return {}
  try:
    with open(p, "rb") as f:
      data = tomllib.load(f)
  except tomllib.TOMLDecodeError as e:
    raise InputError(f"{p}: not a valid keys file ({e})") from None
  out = {}
  for name, t in data.get("keys", {}).items():
    if not isinstance(t, dict) or t.get("role") not in ROLES or \
        not str(t.get("hash", "")).startswith("sha256:"):
      raise InputError(f"{p}: key {name!r} needs role = terminal|reviewer and a sha256 hash")
    out[name] = Key(name, t["role"], t["hash"], float(t.get("created", 0.0)))
  return out


def _dump(keys: dict[str, Key]) -> str:
  lines = ["# palmjax API keys (palmjax keys add); only SHA-256 hashes of the keys are kept", ""]
  for k in keys.values():
    lines += [f'[keys."{k.name}"]', f'role = "{k.role}"', f'hash = "{k.hash}"',
              f"created = {k.created!r}", ""]
  return "\n".join(lines)


def add_key(path: str | os.PathLike, name: str, role: str) -> str:
  """Adds key ``name`` with ``role`` to ``path`` (created); returns the new token (the only
  time it is ever seen)."""
  from palmjax.io import atomic_path
  if not _NAME.match(name):
    raise InputError(f"key name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
  if role not in ROLES:
    raise InputError(f"role must be one of {ROLES}, got {role!r}")
  keys = load_keys(path)
  if name in keys:
    raise InputError(f"{os.fspath(path)}: a key named {name!r} exists already")
  token = "pj_" + secrets.token_urlsafe(32)
  keys[name] = Key(name, role, hash_token(token), time.time())
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(_dump(keys))
  return token


class KeyRing:
  """The keys of a server: :meth:`lookup` maps a bearer token to its :class:`Key`."""

  def __init__(self, keys: dict[str, Key]):
    self.keys = dict(keys)

  @classmethod
  def from_file(cls, path: str | os.PathLike) -> "KeyRing":
    keys = load_keys(path)
    if not keys:
      raise InputError(f"{os.fspath(path)}: no API keys; add one with `palmjax keys add "
                       f"--keys {os.fspath(path)} --role terminal NAME`")
    return cls(keys)

  def lookup(self, token: str | None) -> Key | None:
    if not token:
      return None
    h = hash_token(token)
    found = None
    for k in self.keys.values():  # no early exit: the time does not depend on the match
      if hmac.compare_digest(h, k.hash):
        found = k
    return found


class RateLimiter:
  """Token bucket per key: ``burst`` requests at once, refilled at ``rate`` per second."""

  def __init__(self, rate: float = 20.0, burst: int = 50):
    if rate <= 0 or burst < 1:
      raise InputError(f"rate limit: rate must be > 0 and burst >= 1, got {rate}, {burst}")
    self.rate, self.burst = float(rate), float(burst)
    self._buckets: dict[str, tuple[float, float]] = {}

  def allow(self, key: str, now: float | None = None) -> bool:
    now = time.monotonic() if now is None else now
    tokens, last = self._buckets.get(key, (self.burst, now))
    tokens = min(self.burst, tokens + (now - last) * self.rate)
    ok = tokens >= 1.0
    self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
    return ok
