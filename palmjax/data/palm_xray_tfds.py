"""TFDS builder ``palm_xray``: simulated palm bone-joint radiographs (live and spoofs).

Generated on the fly by :mod:`palmjax.data.palm_xray` (nothing is downloaded), stored as
array_record with ``Tensor`` / ``ClassLabel`` features only, so it builds and reads without
TensorFlow::

    import tensorflow_datasets as tfds
    from palmjax.data.palm_xray_tfds import PalmXray

    builder = PalmXray(config="default", data_dir="~/tensorflow_datasets")
    builder.download_and_prepare()
    train = builder.as_data_source(split="train")      # random access, grain-compatible
    ex = train[0]   # {"hr": uint16 [S, S, 1], "lr": uint16 [S/s, S/s, 1], "label", ...}

Configs: ``default`` (all attack kinds in every split), ``tiny`` (64 px, a few examples,
for smoke tests), and ``loao_<attack>`` for each spoof kind: leave-one-attack-out, where
train and validation hold live hands and the other three spoof kinds, and test holds live
hands and only the held-out kind (an unseen attack, as ISO/IEC 30107-3 evaluations ask).

Every example is a pure function of ``(config.seed, split, index)``: sample ``i`` of a
split uses ``fold_in(fold_in(key(seed), split_id), i)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from palmjax.data import palm_xray
from palmjax.data._tfds import tfds

_SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class PalmXrayBuilderConfig(tfds.core.BuilderConfig):
  """Sizes and simulator settings of one ``palm_xray`` variant.

  ``holdout``: index into ``palm_xray.ATTACK_NAMES`` of the spoof kind left out of train
  and validation (and the only spoof kind in test); ``-1`` keeps all kinds everywhere.
  """

  size: int = 128
  scale: int = 2
  train: int = 4000
  validation: int = 500
  test: int = 1000
  holdout: int = -1
  style: str = "v1"  # simulator look, palm_xray.STYLES
  seed: int = 0
  chunk: int = 64

  def sim_config(self, split: str) -> palm_xray.PalmXrayConfig:
    weights = [1.0] * (len(palm_xray.ATTACK_NAMES) - 1)
    if self.holdout > 0:
      if split == "test":
        weights = [float(k == self.holdout) for k in range(1, len(palm_xray.ATTACK_NAMES))]
      else:
        weights[self.holdout - 1] = 0.0
    return palm_xray.PalmXrayConfig(size=self.size, scale=self.scale,
                                    attack_weights=tuple(weights), style=self.style)


def _configs() -> list[PalmXrayBuilderConfig]:
  out = [
      PalmXrayBuilderConfig(name="default", description="All attack kinds in every split."),
      PalmXrayBuilderConfig(name="tiny", description="64 px, 16/8/8 examples (smoke tests).",
                            size=64, train=16, validation=8, test=8, chunk=8),
  ]
  for k, name in enumerate(palm_xray.ATTACK_NAMES[1:], start=1):
    out.append(PalmXrayBuilderConfig(
        name=f"loao_{name}", holdout=k,
        description=f"Leave-one-attack-out: '{name}' only in test (with live hands)."))
  # The same variants drawn with the v2 simulator (calibrated against real radiographs).
  out += [dataclasses.replace(c, name=f"{c.name}_v2", style="v2",
                              description=f"{c.description} Simulator style v2.")
          for c in list(out)]
  return out


class PalmXray(tfds.core.GeneratorBasedBuilder):
  """Simulated palm bone-joint X-ray images, live (label 1) and spoof (label 0)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: live hands and four spoof kinds."}
  BUILDER_CONFIGS = _configs()
  DEFAULT_CONFIG_NAME = "default"

  def __init__(self, *args, file_format: str = "array_record", **kwargs):
    super().__init__(*args, file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    lr = c.size // c.scale
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "hr": tfds.features.Tensor(shape=(c.size, c.size, 1), dtype=np.uint16),
            "lr": tfds.features.Tensor(shape=(lr, lr, 1), dtype=np.uint16),
            "bone_mask": tfds.features.Tensor(shape=(c.size, c.size), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=["spoof", "live"]),
            "attack": tfds.features.ClassLabel(names=list(palm_xray.ATTACK_NAMES)),
            "params": tfds.features.Tensor(shape=(len(palm_xray.PARAM_NAMES),),
                                           dtype=np.float32),
        }),
        supervised_keys=("hr", "label"),
        homepage="https://github.com/palmjax/palmjax",
        metadata=tfds.core.MetadataDict(param_names=list(palm_xray.PARAM_NAMES)),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # simulated: nothing to download
    return {split: self._generate_examples(split) for split in _SPLITS}

  def _generate_examples(self, split: str):
    import jax

    c = self.builder_config
    n = getattr(c, split)
    cfg = c.sim_config(split)
    key = jax.random.fold_in(jax.random.key(c.seed), _SPLITS.index(split))
    for start in range(0, n, c.chunk):
      # Fixed chunk shape (one compilation); the tail of the last chunk is dropped.
      batch = jax.device_get(palm_xray.sample(key, c.chunk, cfg, start=start))
      hr = palm_xray.to_uint(batch["hr"], 16)
      lr = palm_xray.to_uint(batch["lr"], 16)
      params = np.stack([batch["params"][k] for k in palm_xray.PARAM_NAMES], -1)
      for j in range(min(c.chunk, n - start)):
        yield f"{split}-{start + j:07d}", {
            "hr": hr[j],
            "lr": lr[j],
            "bone_mask": batch["bone_mask"][j].astype(np.uint8),
            "label": int(batch["label"][j]),
            "attack": int(batch["attack"][j]),
            "params": params[j].astype(np.float32),
        }
