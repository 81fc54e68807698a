"""The ``palmjax`` command: one sub-command module per stage in this package.

Each module ``palmjax/cli/<name>.py`` defines ``register(subparsers)`` that adds its
sub-command. Modules import JAX and friends inside their handlers, so ``--help`` is fast.
Handlers return an exit code; :class:`palmjax.errors.InputError` becomes a one-line
``error: ...`` message and exit code 2 instead of a traceback.
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
  from palmjax.errors import InputError
  try:
    return int(args.func(args) or 0)
  except InputError as e:
    print(f"palmjax: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("palmjax: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
