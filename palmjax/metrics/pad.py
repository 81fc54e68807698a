"""Presentation-attack-detection metrics (ISO/IEC 30107-3) and ROC/DET curves.

Conventions: ``scores`` are probabilities (or any score) that a presentation is **bona fide
(live)**; ``labels`` are 1 for bona fide and 0 for attack; a presentation is accepted as
bona fide when ``score >= threshold``. ``attack_types`` names the attack instrument species
of each attack presentation (ignored for bona fide ones).

* APCER(type) = share of that type's attack presentations accepted as bona fide;
  the worst (maximum) over types is what ACER uses.
* BPCER = share of bona fide presentations rejected as attacks.
* ACER = (max APCER + BPCER) / 2; HTER = (APCER over all attacks + BPCER) / 2.
* EER = the error rate where pooled APCER equals BPCER (interpolated on the ROC).
* ROC AUC = P(score of a bona fide > score of an attack), ties counting one half.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from palmjax.errors import InputError


# The short glossary printed by ``palmjax quickstart`` and shown in the README.
GLOSSARY: tuple[tuple[str, str], ...] = (
    ("APCER", "attack presentation classification error rate: share of one attack kind "
              "accepted as live (reported per kind; the worst kind counts)"),
    ("BPCER", "bona fide presentation classification error rate: share of live "
              "presentations rejected as attacks"),
    ("ACER", "average classification error rate: (worst APCER + BPCER) / 2"),
    ("HTER", "half total error rate: (APCER of all attacks pooled + BPCER) / 2"),
    ("EER", "equal error rate: the error where pooled APCER = BPCER as the threshold "
            "moves (threshold-free)"),
    ("FTA", "failure to acquire: share of captures the quality gate sends back for "
            "re-capture (no verdict; reported apart)"),
)


def glossary_markdown() -> str:
  """:data:`GLOSSARY` as a two-column markdown table (the README's copy)."""
  return "\n".join(["| term | meaning |", "|---|---|"]
                   + [f"| {k} | {v} |" for k, v in GLOSSARY])


def _prepare(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
  s = np.asarray(scores, dtype=np.float64).reshape(-1)
  y = np.asarray(labels).reshape(-1)
  if s.shape != y.shape:
    raise InputError(f"scores ({s.shape[0]}) and labels ({y.shape[0]}) differ in length")
  if not np.all(np.isfinite(s)):
    raise InputError("scores hold NaN/inf")
  if not np.all(np.isin(y, (0, 1))):
    raise InputError("labels must be 1 (bona fide) or 0 (attack)")
  return s, y.astype(np.int64)


def roc_auc(scores: Any, labels: Any) -> float:
  """Area under the ROC curve (Mann-Whitney U / (n_pos n_neg)), ties counted one half."""
  s, y = _prepare(scores, labels)
  n_pos, n_neg = int(y.sum()), int((1 - y).sum())
  if n_pos == 0 or n_neg == 0:
    raise InputError("ROC AUC needs both bona fide and attack samples")
  order = np.argsort(s, kind="mergesort")
  ranks = np.empty(len(s))
  sorted_s = s[order]
  # Average ranks over ties.
  _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
  avg = first + (counts + 1) / 2.0
  ranks[order] = np.repeat(avg, counts)
  u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(apcer, bpcer, thresholds)`` for every distinct threshold (accept if >= t).

  Thresholds run from above the largest score (accept nothing: APCER 0, BPCER 1) down to
  the smallest score (accept everything).
  """
  s, y = _prepare(scores, labels)
  thr = np.concatenate([[np.inf], np.unique(s)[::-1]])
  pos, neg = s[y == 1], s[y == 0]
  if len(pos) == 0 or len(neg) == 0:
    raise InputError("a ROC curve needs both bona fide and attack samples")
  pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
  accepted_neg = len(neg) - np.searchsorted(neg_sorted, thr, side="left")
  accepted_pos = len(pos) - np.searchsorted(pos_sorted, thr, side="left")
  return accepted_neg / len(neg), 1.0 - accepted_pos / len(pos), thr


def eer(scores: Any, labels: Any) -> tuple[float, float]:
  """``(equal error rate, threshold)``: where pooled APCER and BPCER cross."""
  apcer, bpcer, thr = roc_curve(scores, labels)
  diff = apcer - bpcer  # goes from -1 (accept nothing) up to +1 (accept everything)
  i = int(np.argmax(diff >= 0))
  if i == 0:
    return float(apcer[0]), float(thr[0])
  # Linear interpolation between points i-1 and i.
  d0, d1 = diff[i - 1], diff[i]
  w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
  rate = (1 - w) * (apcer[i - 1] + bpcer[i - 1]) / 2 + w * (apcer[i] + bpcer[i]) / 2
  t = thr[i] if not np.isfinite(thr[i - 1]) else (1 - w) * thr[i - 1] + w * thr[i]
  return float(rate), float(t)


@dataclasses.dataclass(frozen=True)
class PADReport:
  """ISO/IEC 30107-3 figures at one threshold, plus threshold-free ones."""

  threshold: float
  apcer: dict[str, float]  # per attack type
  apcer_worst: float
  apcer_all: float
  bpcer: float
  acer: float
  hter: float
  eer: float
  auc: float
  zero_one_error: float  # the patent's loss: share of wrong decisions
  n_bona_fide: int
  n_attack: dict[str, int]

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def markdown(self, title: str = "") -> str:
    rows = [f"**{title}**\n" if title else "",
            "| metric | value |", "|---|---:|",
            f"| threshold | {self.threshold:.3f} |"]
    rows += [f"| APCER {k} (n={self.n_attack[k]}) | {100 * v:.2f}% |"
             for k, v in sorted(self.apcer.items())]
    rows += [f"| APCER worst | {100 * self.apcer_worst:.2f}% |",
             f"| BPCER (n={self.n_bona_fide}) | {100 * self.bpcer:.2f}% |",
             f"| ACER | {100 * self.acer:.2f}% |", f"| HTER | {100 * self.hter:.2f}% |",
             f"| EER | {100 * self.eer:.2f}% |", f"| ROC AUC | {self.auc:.4f} |",
             f"| 0/1 error | {100 * self.zero_one_error:.2f}% |"]
    return "\n".join(r for r in rows if r != "")


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
  """Wilson score interval of a proportion ``k / n`` (95% for the default ``z``); ``(0, 1)``
  when ``n == 0``. Used for error rates measured on few captures (e.g. BPCER 0 of 199)."""
  if not 0 <= k <= n:
    raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
  if n == 0:
    return (0.0, 1.0)
  p = k / n
  d = 1 + z * z / n
  c = (p + z * z / (2 * n)) / d
  h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
  return (max(0.0, c - h), min(1.0, c + h))


def pad_report(scores: Any, labels: Any, attack_types: Sequence[Any] | None = None, *,
               threshold: float = 0.5, accepted: Any | None = None) -> PADReport:
  """All PAD metrics at ``threshold`` (bona fide accepted when ``score >= threshold``).

  ``accepted`` (bool per presentation, optional): those the quality gate let through. The
  others were sent to re-capture: a failure for a bona fide presentation (counted in BPCER),
  a rejection for an attack; for the threshold-free figures they score below every other.
  """
  s, y = _prepare(scores, labels)
  if accepted is not None:
    ok = np.asarray(accepted, bool)
    if ok.shape != s.shape:
      raise InputError(f"accepted ({ok.shape}) and scores ({s.shape}) differ in shape")
    s = np.where(ok, s, min(float(s.min()), float(threshold)) - 1.0)
  if y.sum() == 0 or (1 - y).sum() == 0:
    raise InputError("PAD metrics need both bona fide and attack samples")
  types = np.asarray(["attack"] * len(s) if attack_types is None else
                     [str(t) for t in attack_types])
  if len(types) != len(s):
    raise InputError(f"attack_types ({len(types)}) and scores ({len(s)}) differ in length")
  accept = s >= threshold
  apcer, n_attack = {}, {}
  for t in sorted(set(types[y == 0])):
    m = (y == 0) & (types == t)
    apcer[t] = float(accept[m].mean())
    n_attack[t] = int(m.sum())
  bpcer = float((~accept[y == 1]).mean())
  apcer_all = float(accept[y == 0].mean())
  worst = max(apcer.values())
  e, _ = eer(s, y)
  return PADReport(threshold=float(threshold), apcer=apcer, apcer_worst=worst,
                   apcer_all=apcer_all, bpcer=bpcer, acer=(worst + bpcer) / 2,
                   hter=(apcer_all + bpcer) / 2, eer=e, auc=roc_auc(s, y),
                   zero_one_error=float((accept != (y == 1)).mean()),
                   n_bona_fide=int(y.sum()), n_attack=n_attack)


def threshold_for(scores: Any, labels: Any, *, criterion: str = "eer",
                  target: float = 0.01) -> float:
  """Chooses a threshold on a development split.

  ``criterion``: ``"eer"`` (APCER = BPCER), ``"bpcer"`` (largest threshold with BPCER <=
  ``target``) or ``"acer"`` (minimum pooled half total error).
  """
  s, y = _prepare(scores, labels)
  if criterion == "eer":
    return eer(s, y)[1]
  apcer, bpcer, thr = roc_curve(s, y)
  finite = np.isfinite(thr)
  if criterion == "bpcer":
    ok = np.where(finite & (bpcer <= target))[0]
    if len(ok) == 0:
      raise InputError(f"no threshold reaches BPCER <= {target}")
    return float(thr[ok[0]])
  if criterion == "acer":
    i = int(np.argmin(np.where(finite, apcer + bpcer, np.inf)))
    return float(thr[i])
  raise InputError(f"criterion must be eer, bpcer or acer, got {criterion!r}")


def plot_roc_det(path: str, curves: dict[str, tuple[Any, Any]], *, title: str = "") -> None:
  """Saves ROC (left) and DET (right, normal-deviate axes) plots of several score sets.

  ``curves`` maps a legend name to ``(scores, labels)``. Written atomically as PNG.
  """
  from scipy.stats import norm

  from palmjax.plotting import figure, save_png

  fig, (ax_roc, ax_det) = figure(1, 2, figsize=(10, 4.5), purpose="ROC/DET plots")
  eps = 1e-4
  for name, (s, y) in curves.items():
    apcer, bpcer, _ = roc_curve(s, y)
    ax_roc.plot(apcer, 1 - bpcer, label=f"{name} (AUC {roc_auc(s, y):.3f})")
    ax_det.plot(norm.ppf(np.clip(apcer, eps, 1 - eps)), norm.ppf(np.clip(bpcer, eps, 1 - eps)),
                label=f"{name} (EER {100 * eer(s, y)[0]:.1f}%)")
  ax_roc.set(xlabel="APCER (attacks accepted)", ylabel="1 - BPCER (bona fide accepted)",
             title="ROC")
  ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
  ax_det.set_xticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
  ax_det.set_yticks(norm.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
  ax_det.set(xlabel="APCER", ylabel="BPCER", title="DET",
             xlim=norm.ppf([eps, 0.6]), ylim=norm.ppf([eps, 0.6]))
  for ax in (ax_roc, ax_det):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  save_png(fig, path, dpi=100)
