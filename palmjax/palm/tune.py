"""The tuning loop (palm patent step P6): train -> use -> tune on field mistakes.

Field captures whose device verdict disagreed with the reviewed label are read from the
:class:`~palmjax.palm.store.FieldStore`, mixed with the original training data (the
mistakes oversampled to a set share of each batch) and the deployed classifier is trained
further from its current parameters. Before/after PAD metrics are measured on a held-out
simulated split and on the field mistakes; the new classifier is published atomically,
the previous one kept beside it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable

import jax
import numpy as np

from palmjax.errors import InputError
from palmjax.palm import train as palm_train
from palmjax.palm.store import FieldStore

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TuneConfig:
  num_steps: int = 300
  learning_rate: float = 5e-4
  mistake_share: float = 0.25  # target share of field mistakes among training samples
  n_original: int = 1024  # original (simulated) training samples mixed in
  n_val: int = 512  # validation samples (checkpoint choice and the new threshold)
  n_holdout: int = 512  # held-out simulated samples for the before/after report
  holdout_seed: int = 12345
  seed: int = 1


def field_inputs(samples: list, cfg: palm_train.PalmTrainConfig, sr_model: Any
                 ) -> dict[str, np.ndarray]:
  """Stored field captures -> classifier inputs and labels."""
  lr_size = cfg.image_size // cfg.scale
  imgs = []
  for s in samples:
    if s.pixels.shape != (lr_size, lr_size, 1):
      raise InputError(f"field sample {s.id} is {s.pixels.shape}; the classifier expects "
                       f"{(lr_size, lr_size, 1)} captures")
    imgs.append(s.pixels)
  x = np.stack(imgs).astype(np.float32)
  return {"lr": x, "image": palm_train.classifier_inputs(x, cfg, sr_model),
          "label": np.array([s.label for s in samples], np.int32)}


def tune(store_path: str | os.PathLike, classifier: str | os.PathLike, workdir: str, *,
         config: TuneConfig = TuneConfig(), publish_to: str | None = None,
         progress: bool = True, log: Callable[[str], None] | None = None) -> dict[str, Any]:
  """Fine-tunes ``classifier`` on the store's mistakes; returns the before/after report.

  ``publish_to`` (default: ``classifier`` itself) receives the tuned model atomically; the
  model it replaces is kept as ``<publish_to>.prev-<time>``. Log lines go to ``log``
  (default: this module's logger).
  """
  log = log or logger.info
  with FieldStore(store_path, create=False) as store:
    mistakes = store.mistakes()
  if not mistakes:
    raise InputError(f"{store_path}: holds no mistakes to tune on")
  params, base_cfg, threshold, _ = palm_train.load_classifier(classifier)
  sr_model = palm_train.load_sr_for(base_cfg)
  field = field_inputs(mistakes, base_cfg, sr_model)
  log(f"tuning on {len(mistakes)} field mistakes "
      f"({int(field['label'].sum())} live, {int((1 - field['label']).sum())} spoof)")

  cfg = dataclasses.replace(base_cfg, init_from=os.fspath(classifier),
                            num_steps=config.num_steps, learning_rate=config.learning_rate,
                            warmup_steps=10, n_train=config.n_original, n_val=config.n_val,
                            seed=config.seed,
                            eval_every=max(config.num_steps // 3, 1),
                            save_every=max(config.num_steps // 3, 1))
  splits = palm_train.make_splits(cfg, progress=progress)
  reps = max(1, int(round(config.mistake_share * config.n_original /
                          ((1 - config.mistake_share) * len(mistakes)))))
  extra = {k: np.concatenate([field[k]] * reps) for k in ("image", "label")}

  sim = base_cfg.sim_config()
  hold = palm_train.simulate(jax.random.key(config.holdout_seed), config.n_holdout, sim,
                             progress=progress, desc="simulating held-out")
  hold["image"] = palm_train.classifier_inputs(hold["lr"], base_cfg, sr_model)
  mcfg = base_cfg.model_config()

  def report(p, t):
    rep, _ = palm_train.evaluate(p, mcfg, hold["image"], hold["label"], hold["attack"],
                                 threshold=t)
    pf = palm_train.batched_proba(p, field["image"], mcfg)
    fixed = float(np.mean((pf >= t) == (field["label"] == 1)))
    return {"holdout": rep.to_dict(), "field_mistakes_now_correct": fixed, "threshold": t}

  before = report(params, threshold)
  new_params, summary = palm_train.train(cfg, workdir, splits=splits, extra_train=extra,
                                         progress=progress, log=log)
  # The tuned model's scores shift, so its threshold is chosen again at the validation EER.
  threshold = summary["threshold"]
  after = report(new_params, threshold)
  target = os.fspath(publish_to or classifier)
  kept = palm_train.export_classifier(
      target, new_params, cfg, threshold,
      {"tuned_on_mistakes": len(mistakes), "before": before, "after": after},
      keep_old=True)
  log(f"published tuned classifier to {target}" + (f" (previous kept at {kept})" if kept
                                                     else ""))
  return {"mistakes": len(mistakes), "before": before, "after": after, "published": target,
          "previous": kept, "train": summary}
