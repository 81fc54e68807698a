"""palmjax: biometric liveness detection (presentation-attack detection) in JAX/Flax.

Two pipelines from two patents:

* palm bone-joint images: quality gate -> SRCNN super-resolution -> CNN liveness classifier
  (:mod:`palmjax.sr`, :mod:`palmjax.palm`);
* face terminal: similarity gate -> colour/texture/optical-flow image liveness ->
  ultrasonic echo liveness -> decision (:mod:`palmjax.face`, :mod:`palmjax.echo`).

Numeric kernels shared by both live in :mod:`palmjax.kernels`; metrics in
:mod:`palmjax.metrics`; models in :mod:`palmjax.models`; datasets in :mod:`palmjax.data`.

Docstrings name the patents' steps as "SPEC P1-P7" (palm) and "SPEC F1-F8" (face): they are
restated step by step in ``docs/SPEC.md`` in the repository.
"""

__version__ = "0.1.0"

from palmjax.errors import InputError  # noqa: E402

__all__ = ["InputError", "__version__"]
