"""The palm liveness pipeline end to end (palm patent steps P1, P1b, P2, P4, P7).

load (a capture of the model's size, 8/16-bit PNG/TIFF/NPY, or a full clinical radiograph
of any size, PNG/JPEG/TIFF/DICOM, cropped to the hand by :mod:`palmjax.palm.clinical`)
-> quality gate (re-capture with a reason) -> super-resolution
(or bicubic / raw, as the classifier was trained) -> classifier -> a result record.

A spoof gets the patent's "recognition error" action; a live capture is passed on to
identity recognition; a poor capture asks for a re-capture.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Sequence

import numpy as np

from palmjax.assets import checkpoint_path
from palmjax.errors import InputError, check_image_array
from palmjax.palm import quality as quality_lib
from palmjax.palm import train as palm_train

ACTIONS = {"live": "pass to identity recognition", "spoof": "recognition error",
           "recapture": "re-capture the palm"}


@dataclasses.dataclass(frozen=True)
class PalmResult:
  """One capture's verdict: ``decision`` is live, spoof or recapture."""

  source: str
  probability: float | None
  decision: str
  action: str
  reason: str
  quality: dict[str, float]
  threshold: float
  input: dict[str, Any] | None = None  # what loading did (palmjax.palm.clinical record)
  # log P(live) - log P(spoof): finite and ordered where the probability prints as 0 or 1.
  log_odds: float | None = None

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def default_classifier_path() -> pathlib.Path:
  return checkpoint_path("palm_classifier")


class PalmLivenessDetector:
  """Quality gate + (SR) + classifier, batched and jitted.

  Args:
    classifier: exported classifier directory (default: the shipped one).
    threshold: decision threshold on P(live) (default: the one chosen on the validation
      split at training time). ``binary=True`` returns 0/1 probabilities.
    quality: quality-gate thresholds; ``None`` disables the gate.
  """

  def __init__(self, classifier: str | os.PathLike | None = None, *,
               threshold: float | None = None, binary: bool = False,
               quality: quality_lib.QualityConfig | None = quality_lib.QualityConfig(),
               sr_checkpoint: str | None = None):
    path = classifier or default_classifier_path()
    if not os.path.isdir(path):
      raise InputError(f"{path}: no classifier checkpoint; train one with "
                       f"`palmjax palm train --export {path}`")
    self.params, self.train_config, saved_threshold, self.metrics = \
        palm_train.load_classifier(path)
    if sr_checkpoint:
      self.train_config = dataclasses.replace(self.train_config, sr_checkpoint=sr_checkpoint)
    self.threshold = saved_threshold if threshold is None else float(threshold)
    if not 0.0 <= self.threshold <= 1.0:
      raise InputError(f"threshold must lie in [0, 1], got {self.threshold}")
    self.binary = binary
    self.quality = quality
    self.model_config = self.train_config.model_config()
    self.sr_model = palm_train.load_sr_for(self.train_config)
    self.lr_size = self.train_config.image_size // self.train_config.scale

  def _check(self, images: np.ndarray) -> np.ndarray:
    x = check_image_array(images, "images", channels=(1,), batched=True)
    if x.shape[1:3] != (self.lr_size, self.lr_size):
      raise InputError(f"captures are {x.shape[1]}x{x.shape[2]}; this model expects "
                       f"{self.lr_size}x{self.lr_size} low-resolution palm images")
    if x.min() < 0 or x.max() > 1:
      raise InputError("pixel values must lie in [0, 1]")
    return x.astype(np.float32)

  def log_odds(self, images: Any) -> np.ndarray:
    """Live log-odds for low-resolution captures ``[N, h, w, 1]`` (no quality gate)."""
    x = self._check(np.asarray(images))
    inputs = palm_train.classifier_inputs(x, self.train_config, self.sr_model)
    return palm_train.batched_proba(self.params, inputs, self.model_config,
                                    fn=palm_train.predict_log_odds).astype(np.float64)

  def probabilities(self, images: Any) -> np.ndarray:
    """P(live) for low-resolution captures ``[N, h, w, 1]`` (no quality gate)."""
    return _sigmoid(self.log_odds(images))

  def detect(self, images: Any, sources: Sequence[str] | None = None,
             inputs: Sequence[dict[str, Any] | None] | None = None) -> list[PalmResult]:
    """Runs the pipeline on a batch of captures; one result per capture.

    ``inputs``: per capture, the record of how it was loaded (copied into the result).
    """
    x = self._check(np.asarray(images))
    sources = list(sources) if sources is not None else [f"#{i}" for i in range(len(x))]
    inputs = list(inputs) if inputs is not None else [None] * len(x)
    q = (quality_lib.judge(quality_lib.quality_measures(x, border_px=self.quality.border_px),
                           self.quality) if self.quality else [None] * len(x))
    z = self.log_odds(x)
    p = _sigmoid(z)
    out = []
    for i in range(len(x)):
      qi = q[i]
      measures = qi.measures if qi else {}
      if qi is not None and not qi.ok:
        out.append(PalmResult(sources[i], None, "recapture", ACTIONS["recapture"], qi.reason,
                              measures, self.threshold, inputs[i]))
        continue
      live = bool(p[i] >= self.threshold)
      prob = float(live) if self.binary else float(p[i])
      decision = "live" if live else "spoof"
      out.append(PalmResult(sources[i], prob, decision, ACTIONS[decision],
                            f"P(live) {p[i]:.3g} {'>=' if live else '<'} threshold "
                            f"{self.threshold:.3f} (log-odds {z[i]:.2f})", measures,
                            self.threshold, inputs[i], float(z[i])))
    return out

  def detect_files(self, paths: Sequence[str | os.PathLike]) -> list[PalmResult]:
    """Loads captures or full radiographs and runs :meth:`detect`.

    A grey 8/16-bit PNG/TIFF/NPY of the model's capture size is used as it is; any other
    size (PNG / JPEG / TIFF, 8 or 16 bit, grey or grey stored as RGB) and DICOM go through
    the clinical input path (:func:`palmjax.palm.clinical.load_capture`: hand found,
    cropped with a margin, resampled). Each result's ``input`` records what was done.
    """
    results, errors = self.detect_each(paths)
    if errors:
      raise InputError(next(iter(errors.values())))
    return [results[i] for i in range(len(paths))]

  def detect_each(self, paths: Sequence[str | os.PathLike]
                  ) -> tuple[dict[int, PalmResult], dict[int, str]]:
    """Like :meth:`detect_files`, but a file that cannot be read does not stop the others:
    returns ``({index: result}, {index: error message})`` (the good files judged in one
    batch)."""
    from palmjax.palm import clinical
    if not len(paths):
      raise InputError("no images given")
    cfg = clinical.ClinicalConfig(size=self.lr_size)
    loaded, errors = [], {}
    for i, p in enumerate(paths):
      try:
        x, rec = clinical.load_capture(p, cfg)
        loaded.append((i, os.fspath(p), x, rec))
      except InputError as e:
        errors[i] = str(e)
    results: dict[int, PalmResult] = {}
    if loaded:
      out = self.detect(np.stack([x for _, _, x, _ in loaded]), [p for _, p, _, _ in loaded],
                        [r for _, _, _, r in loaded])
      results = {i: r for (i, _, _, _), r in zip(loaded, out)}
    return results, errors


def _sigmoid(z: np.ndarray) -> np.ndarray:
  """P(live) from float64 log-odds (no overflow warning for large |z|)."""
  return np.exp(-np.logaddexp(0.0, -z))
