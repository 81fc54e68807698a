"""The ``palmjax`` command: one sub-command module per stage in this package.

Each module ``palmjax/cli/<name>.py`` defines ``register(subparsers)`` that adds its
sub-command. Modules import JAX and friends inside their handlers, so ``--help`` is fast.
Handlers return an exit code. :func:`main` is the one error boundary: an
:class:`palmjax.errors.InputError`, an ``OSError`` (permissions, a missing folder, a full
disk), an ``EOFError``, a SQLite error or a non-finite training loss becomes a one-line
``palmjax: error: ...`` and exit code 2; anything unexpected one line naming it and exit
code 1 (``palmjax --debug ...`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

# Order in `palmjax --help`; modules not listed here follow alphabetically.
_ORDER = ["quickstart", "sr", "palm", "face", "echo", "bench"]


def _modules() -> list[str]:
  names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
  return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="palmjax",
      description="Biometric liveness detection in JAX: palm bone-joint super-resolution "
      "and liveness, face-terminal image and ultrasonic-echo liveness.")
  from palmjax import __version__
  parser.add_argument("--version", action="version", version=f"palmjax {__version__}")
  parser.add_argument("--debug", action="store_true",
                      help="show the full traceback of an unexpected error")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  for name in _modules():
    importlib.import_module(f"{__name__}.{name}").register(sub)
  return parser


def _show_library_log() -> None:
  """The library logs through ``logging`` (``palmjax.*`` loggers); the CLI prints those
  lines (INFO and up) on stdout, once, without passing them on to other handlers."""
  import logging

  class _Stdout(logging.StreamHandler):
    @property
    def stream(self):  # whatever sys.stdout is now (it may be replaced, e.g. in tests)
      return sys.stdout

    @stream.setter
    def stream(self, value):
      pass

  lib = logging.getLogger("palmjax")
  if not any(isinstance(h, _Stdout) or getattr(h, "_palmjax_cli", False)
             for h in lib.handlers):
    handler = _Stdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._palmjax_cli = True  # type: ignore[attr-defined]
    lib.addHandler(handler)
  lib.setLevel(logging.INFO)
  lib.propagate = False


def main(argv: list[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  _show_library_log()
  import sqlite3

  from palmjax.errors import InputError
  try:
    return int(args.func(args) or 0)
  except InputError as e:
    print(f"palmjax: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("palmjax: interrupted", file=sys.stderr)
    return 130
  except FloatingPointError as e:  # non-finite training loss (palmjax.train_loop)
    print(f"palmjax: error: {e}", file=sys.stderr)
    return 2
  except (OSError, EOFError, sqlite3.Error) as e:  # permissions, full disks, bad stores
    if args.debug:
      raise
    where = getattr(e, "filename", None)
    what = getattr(e, "strerror", None) or str(e) or type(e).__name__
    print(f"palmjax: error: {where + ': ' if where else ''}{what}", file=sys.stderr)
    return 2
  except Exception as e:  # noqa: BLE001 - the boundary: one line, never a traceback
    if args.debug:
      raise
    print(f"palmjax: internal error: {type(e).__name__}: {e} (run with --debug for the "
          "traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
