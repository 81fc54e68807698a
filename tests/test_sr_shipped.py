"""The shipped SRCNN checkpoints reach the issue's targets on Set5/Set14 (P2 claim).

These read ``../shared/data`` and skip cleanly where it is absent.
"""

import pytest

from palmjax.data.images import load_pool
from palmjax.io import list_images
from palmjax.sr import default_checkpoint, evaluate_pool, load_model, summarize


def _gain(data_dir, scale):
  model = load_model(scale=scale)
  pool = load_pool(list_images(data_dir), scale, model.config.channels)
  return summarize(evaluate_pool(model.params, model.config, pool))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_checkpoint_is_shipped(scale):
  path = default_checkpoint(scale)
  assert (path / "params").is_dir() and (path / "config.json").is_file()
  model = load_model(scale=scale)
  assert model.scale == scale and model.config.receptive_field == 17


def test_x3_targets_on_set5_and_set14(shared_data):
  s5 = _gain(shared_data / "Set5", 3)
  # Bicubic under this protocol matches the literature's 30.39 dB (Set5 x3).
  assert s5["psnr_bicubic"] == pytest.approx(30.39, abs=0.1)
  assert s5["psnr_gain"] >= 2.0, s5
  assert s5["ssim_sr"] > s5["ssim_bicubic"]
  s14 = _gain(shared_data / "Set14", 3)
  assert s14["psnr_gain"] >= 1.2, s14


@pytest.mark.parametrize("scale", [2, 4])
def test_x2_x4_beat_bicubic_on_set5(shared_data, scale):
  s = _gain(shared_data / "Set5", scale)
  assert s["psnr_gain"] >= 1.0, s
