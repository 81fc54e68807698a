"""Shared test configuration.

Hypothesis: JAX compiles on first call, so per-example deadlines are off. Float strategies
use ``allow_subnormal=False``: XLA flushes subnormal floats to zero on CPU (and GPU), which
NumPy-based references do not, so a 1e-43 input is not a meaningful disagreement. The default
profile runs a moderate number of examples; ``HYPOTHESIS_PROFILE=thorough`` runs more.
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

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """``../shared/data`` (natural-image SR sets); skips the test when it is absent."""
  if not (SHARED_DATA / "Set5").is_dir():
    pytest.skip(f"{SHARED_DATA} is absent (natural-image SR data ships only beside the repo)")
  return SHARED_DATA
