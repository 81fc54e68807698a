"""Shared test configuration.

Hypothesis: JAX compiles on first call, so per-example deadlines are off. Float strategies
use ``allow_subnormal=False``: XLA flushes subnormal floats to zero on CPU (and GPU), which
NumPy-based references do not, so a 1e-43 input is not a meaningful disagreement. The default
profile runs a moderate number of examples; ``HYPOTHESIS_PROFILE=thorough`` runs more.

Opt-in (``PALMJAX_TEST_JAX_CACHE=1``): compiled XLA programs persist between runs in
``.pytest_cache/d/jax-compilation-cache`` (also for the CLI subprocesses the tests start), so
a second local run skips most compilation (tests/test_lbp.py + test_spectral.py: 29.5 s CPU
cold, 8.2 s warm). It is off by default: writing the cache (JAX's CPU executable
serialization) crashed a clean-clone run of the whole suite with a segmentation fault in
``compilation_cache.put_executable_and_time``. A ``JAX_COMPILATION_CACHE_DIR`` already set
is left alone.

Tier: ``python -m pytest -m "not slow"`` is the fast tier (see README, "Tests"); plain
``python -m pytest`` (CI) runs everything.
"""

import os
import pathlib

import hypothesis
import pytest

hypothesis.settings.register_profile(
    "default", deadline=None, max_examples=25, print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow,
                           hypothesis.HealthCheck.data_too_large])
hypothesis.settings.register_profile(
    "thorough", parent=hypothesis.settings.get_profile("default"), max_examples=300)
# CI (CI=true) replays a fixed set of examples so that a red build is reproducible; local
# runs explore new examples every time.
hypothesis.settings.register_profile(
    "ci", parent=hypothesis.settings.get_profile("default"), derandomize=True)
hypothesis.settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


def pytest_configure(config):
  """Points JAX's persistent compilation cache at the pytest cache (see the module doc)."""
  cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
  if (cache is None or os.environ.get("PALMJAX_TEST_JAX_CACHE", "0") != "1"
      or os.environ.get("JAX_COMPILATION_CACHE_DIR")):
    return
  import jax
  path = str(cache.mkdir("jax-compilation-cache"))
  settings = {"jax_compilation_cache_dir": path,
              # cache every program: the suite is thousands of small, quick compilations
              "jax_persistent_cache_min_compile_time_secs": 0.0,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # the CLI subprocesses some tests start


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Drops JAX's compiled programs after each test module. The whole suite compiles
  thousands of programs in one process; kept alive, their code mappings pile up until XLA's
  compiler crashes (a segmentation fault in ``backend_compile_and_load`` near the end of a
  clean-clone run, while every module passes on its own). Modules recompile what they use."""
  yield
  import gc

  import jax
  jax.clear_caches()
  gc.collect()


REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """``../shared/data`` (natural-image SR sets); skips the test when it is absent."""
  if not (SHARED_DATA / "Set5").is_dir():
    pytest.skip(f"{SHARED_DATA} is absent (natural-image SR data ships only beside the repo)")
  return SHARED_DATA
