"""SRCNN model, pure train step, checkpoint resume, export and up-scaling (P2-P3)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from palmjax import checkpointing
from palmjax.errors import InputError
from palmjax.io import load_image
from palmjax.models import SRCNN, SRCNNConfig
from palmjax.sr import (SRModel, SRTrainConfig, create_train_state, load_model,
                        make_train_step, super_resolve, upscale_file)
from palmjax.sr.train import batch_at, train_srcnn
from palmjax.data import images

TINY = dict(f1=5, f2=3, f3=3, n1=8, n2=4)


def test_default_architecture_is_9_5_5_64_32():
  cfg = SRCNNConfig()
  params = SRCNN(cfg).init(jax.random.key(0), jnp.zeros((1, 17, 17, 1)))["params"]
  shapes = {k: v["kernel"].shape for k, v in params.items()}
  assert shapes == {"extract": (9, 9, 1, 64), "map": (5, 5, 64, 32),
                    "reconstruct": (5, 5, 32, 1)}
  n = sum(x.size for x in jax.tree.leaves(params))
  assert n == 9 * 9 * 64 + 64 + 5 * 5 * 64 * 32 + 32 + 5 * 5 * 32 + 1 == 57281
  assert cfg.receptive_field == 17
  rgb = SRCNN(SRCNNConfig(channels=3, f2=1)).init(jax.random.key(0), jnp.zeros((1, 9, 9, 3)))
  assert rgb["params"]["map"]["kernel"].shape == (1, 1, 64, 32)


@pytest.mark.parametrize("bad", [dict(f1=4), dict(n1=0), dict(channels=2), dict(scale=1),
                                 dict(pad_mode="wrap")])
def test_config_validation(bad):
  with pytest.raises(ValueError):
    SRCNNConfig(**bad)


@pytest.mark.parametrize("residual", [True, False])
def test_valid_output_is_interior_of_padded_output(residual):
  cfg = SRCNNConfig(**TINY, residual=residual)
  model = SRCNN(cfg)
  x = jax.random.uniform(jax.random.key(1), (2, 20, 24, 1))
  params = model.init(jax.random.key(0), x)
  full = model.apply(params, x)
  valid = model.apply(params, x, pad=False)
  r = cfg.radius
  assert full.shape == x.shape and valid.shape == (2, 20 - 2 * r, 24 - 2 * r, 1)
  np.testing.assert_allclose(np.asarray(full[:, r:-r, r:-r]), np.asarray(valid), atol=1e-6)
  with pytest.raises(ValueError, match="no valid interior"):
    model.apply(params, x[:, :2 * r], pad=False)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
  """Three small textured images (one grey 16-bit) for fast training runs."""
  d = tmp_path_factory.mktemp("imgs")
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:60, 0:66]
  for i in range(3):
    f = 0.5 + 0.25 * np.sin(xx / (3 + i)) * np.cos(yy / (4 + i)) + \
        0.02 * rng.standard_normal((60, 66))
    f = np.clip(f, 0, 1)
    if i == 2:
      Image.fromarray((f * 65535).astype(np.uint16)).save(d / f"im{i}.png")
    else:
      rgb = np.stack([f, f[::-1], f[:, ::-1]], -1)
      Image.fromarray((rgb * 255).astype(np.uint8)).save(d / f"im{i}.png")
  return str(d)


def _cfg(image_dir, **kw):
  base = dict(scale=3, **TINY, train_dirs=(image_dir,), val_dir=image_dir, patch_size=12,
              batch_size=4, num_steps=6, eval_every=3, save_every=2, log_every=2,
              warmup_steps=1, learning_rate=3e-3)
  base.update(kw)
  return SRTrainConfig(**base)


def test_train_step_lowers_loss_on_fixed_batch(image_dir):
  # The plain (non-residual) network starts far from the target: a clear signal.
  cfg = _cfg(image_dir, schedule="constant", residual=False)
  pool = images.load_pool(images.folder_paths(image_dir), 3)
  batch = batch_at(0, jax.random.key(5), pool, cfg)
  assert batch[0].shape == (4, 12 + 2 * 4, 12 + 2 * 4, 1) and batch[1].shape == (4, 12, 12, 1)
  state = create_train_state(jax.random.key(0), cfg)
  step = make_train_step()
  losses = []
  for _ in range(40):
    state, m = step(state, batch)
    losses.append(float(m["loss"]))
  assert losses[-1] < 0.5 * losses[0]
  assert int(state.step) == 40


def test_batches_are_a_pure_function_of_key_and_step(image_dir):
  cfg = _cfg(image_dir)
  pool = images.load_pool(images.folder_paths(image_dir), 3)
  a = batch_at(7, jax.random.key(1), pool, cfg)
  b = batch_at(7, jax.random.key(1), pool, cfg)
  c = batch_at(8, jax.random.key(1), pool, cfg)
  np.testing.assert_array_equal(a[0], b[0])
  assert not np.array_equal(a[0], c[0])


@pytest.mark.slow
def test_resume_after_interrupt_gives_identical_parameters(image_dir, tmp_path):
  cfg = _cfg(image_dir)
  full, s_full = train_srcnn(cfg, tmp_path / "a", progress=False, log=lambda s: None)
  assert s_full["final_step"] == 6 and s_full["stopped_by"] == "num_steps"
  _, s_int = train_srcnn(cfg, tmp_path / "b", progress=False, log=lambda s: None,
                         stop_after=3)
  assert s_int["stopped_by"] == "stop_after" and s_int["final_step"] == 3
  msgs = []
  resumed, s_res = train_srcnn(cfg, tmp_path / "b", progress=False, log=msgs.append)
  assert any("resumed from step 3" in m for m in msgs)
  assert s_res["final_step"] == 6
  # The history continues across the resume: the same entries as the uninterrupted run.
  assert [h["step"] for h in s_full["history"]] == [3, 6]
  assert s_res["history"] == s_full["history"]
  ckpt_a = checkpointing.RunCheckpoints(tmp_path / "a")
  ckpt_b = checkpointing.RunCheckpoints(tmp_path / "b")
  template = create_train_state(jax.random.key(0), cfg)
  la, lb = ckpt_a.restore_latest(template), ckpt_b.restore_latest(template)
  assert int(la.step) == int(lb.step) == 6
  for x, y in zip(jax.tree.leaves(la.params), jax.tree.leaves(lb.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  for x, y in zip(jax.tree.leaves(la.opt_state), jax.tree.leaves(lb.opt_state)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  # A different config in the same workdir is refused rather than silently mixed.
  with pytest.raises(InputError, match="different config"):
    train_srcnn(dataclasses.replace(cfg, learning_rate=1e-4), tmp_path / "b", progress=False)


@pytest.mark.slow
def test_loss_threshold_stops_early_and_export_roundtrip(image_dir, tmp_path):
  cfg = _cfg(image_dir, num_steps=50, loss_threshold=1.0)
  best, summary = train_srcnn(cfg, tmp_path / "run", progress=False, log=lambda s: None,
                              export_to=str(tmp_path / "exp"))
  assert summary["stopped_by"] == "loss_threshold" and summary["final_step"] < 50
  model = load_model(tmp_path / "exp")
  assert model.config == cfg.model_config() and model.scale == 3
  assert model.metrics["history"] == summary["history"]
  assert model.metrics["history"][-1]["step"] == summary["final_step"]
  for x, y in zip(jax.tree.leaves(model.params), jax.tree.leaves(best.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert "validation" in model.metrics
  with pytest.raises(InputError, match="trained for x3"):
    load_model(tmp_path / "exp", scale=2)
  with pytest.raises(InputError, match="not an exported palmjax model"):
    load_model(tmp_path)


def _tiny_model(channels=1, scale=3):
  cfg = SRCNNConfig(**TINY, channels=channels, scale=scale)
  params = SRCNN(cfg).init(jax.random.key(0), jnp.zeros((1, 9, 9, channels)))["params"]
  return SRModel(cfg, params)


@pytest.mark.parametrize("channels, in_c", [(1, 1), (1, 3), (3, 3), (3, 1)])
@pytest.mark.parametrize("scale", [2, 3])
def test_super_resolve_shapes_and_residual_start_is_bicubic(channels, in_c, scale):
  model = _tiny_model(channels, scale)
  x = np.random.default_rng(0).random((11, 13, in_c)).astype(np.float32)
  y = np.asarray(super_resolve(model, x))
  assert y.shape == (33 if scale == 3 else 22, 39 if scale == 3 else 26, in_c)
  assert y.min() >= 0 and y.max() <= 1
  # Residual SRCNN's reconstruction starts near zero: output ~ bicubic.
  from palmjax.kernels import bicubic_resize
  bic = np.clip(np.asarray(bicubic_resize(x, y.shape[0], y.shape[1])), 0, 1)
  assert np.abs(y - bic).mean() < 0.05
  batch = np.asarray(super_resolve(model, np.stack([x, x])))
  np.testing.assert_allclose(batch[1], y, atol=1e-5)


def test_upscale_file_exact_size_and_bit_depth(tmp_path):
  model = _tiny_model()
  u16 = (np.random.default_rng(0).random((10, 14)) * 65535).astype(np.uint16)
  Image.fromarray(u16).save(tmp_path / "in16.png")
  assert upscale_file(tmp_path / "in16.png", tmp_path / "out.png", model) == (30, 42)
  out = load_image(tmp_path / "out.png")
  assert out.bit_depth == 16 and out.pixels.shape == (30, 42, 1)
  rgb = (np.random.default_rng(1).random((7, 9, 3)) * 255).astype(np.uint8)
  Image.fromarray(rgb).save(tmp_path / "in.jpg")
  assert upscale_file(tmp_path / "in.jpg", tmp_path / "o.png", model, scale=4) == (28, 36)
  assert np.asarray(Image.open(tmp_path / "o.png")).shape == (28, 36, 3)


def test_super_resolve_bad_input():
  model = _tiny_model()
  with pytest.raises(InputError, match="scale must be an integer >= 2"):
    super_resolve(model, np.zeros((8, 8, 1), np.float32), scale=1)
  with pytest.raises(InputError, match="NaN"):
    super_resolve(model, np.full((8, 8, 1), np.nan, np.float32))
  with pytest.raises(InputError, match="channels"):
    super_resolve(model, np.zeros((8, 8, 2), np.float32))
  with pytest.raises(InputError, match="too small for scale"):
    images.make_pair(np.zeros((4, 4, 1), np.float32), 3)
  with pytest.raises(InputError, match="scale must be"):
    SRTrainConfig(scale=1)
