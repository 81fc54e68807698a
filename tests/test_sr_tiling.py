"""Tiled SRCNN inference (issue #18.4): identical to the untiled network, bounded memory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from palmjax.cli import main
from palmjax.errors import InputError
from palmjax.models import SRCNN, SRCNNConfig
from palmjax.sr import SRModel, super_resolve
from palmjax.sr.inference import apply_srcnn, apply_srcnn_tiled


def _params(cfg: SRCNNConfig, seed: int):
  """Random parameters with a clear effect (the reconstruction init is ~1e-3)."""
  p = SRCNN(cfg).init(jax.random.key(seed), jnp.zeros((1, 16, 16, cfg.channels)))["params"]
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
  return jax.tree.unflatten(tree, [a + 0.2 * jax.random.normal(k, a.shape)
                                   for a, k in zip(leaves, keys)])


def _numpy_srcnn(params, x: np.ndarray, cfg: SRCNNConfig) -> np.ndarray:
  """Reference forward in NumPy (float64): pad as the model does, VALID correlations."""
  r = cfg.radius
  mode = "constant" if cfg.pad_mode == "zero" else cfg.pad_mode
  h = np.pad(x.astype(np.float64), ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
  for i, name in enumerate(("extract", "map", "reconstruct")):
    k = np.asarray(params[name]["kernel"], np.float64)
    b = np.asarray(params[name]["bias"], np.float64)
    win = np.lib.stride_tricks.sliding_window_view(h, k.shape[:2], axis=(1, 2))
    h = np.einsum("nyxcij,ijco->nyxo", win, k) + b
    if i < 2:
      h = np.maximum(h, 0)
  if cfg.residual:
    h = h + x
  return np.clip(h, 0, 1)


@pytest.mark.slow  # each example compiles two programs: ~5 s an example on a loaded 2-core CPU
@settings(max_examples=12)
@given(h=st.integers(1, 40), w=st.integers(1, 40), tile=st.integers(1, 24),
       kernels=st.tuples(*[st.sampled_from([1, 3, 5])] * 3),
       pad_mode=st.sampled_from(["edge", "reflect", "zero"]), residual=st.booleans(),
       channels=st.sampled_from([1, 3]), n=st.integers(1, 2), seed=st.integers(0, 99))
def test_tiled_equals_untiled(h, w, tile, kernels, pad_mode, residual, channels, n, seed):
  # Sizes not multiples of the tile, smaller than a tile, smaller than the receptive field.
  cfg = SRCNNConfig(f1=kernels[0], f2=kernels[1], f3=kernels[2], n1=4, n2=3,
                    channels=channels, pad_mode=pad_mode, residual=residual)
  params = _params(cfg, seed)
  x = np.asarray(jax.random.uniform(jax.random.key(seed), (n, h, w, channels)))
  whole = np.asarray(apply_srcnn(params, x, cfg))
  tiled = np.asarray(apply_srcnn_tiled(params, x, cfg, tile))
  assert tiled.shape == whole.shape == (n, h, w, channels)
  np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0)
  np.testing.assert_allclose(tiled, _numpy_srcnn(params, x, cfg), atol=1e-4, rtol=0)


def test_super_resolve_tiled_equals_untiled_default_network_rgb():
  # The shipped architecture (9-5-5, 64/32, radius 8) on a Y model applied to RGB, on an
  # image of several 32-pixel tiles whose sides are not multiples of the tile.
  cfg = SRCNNConfig(scale=2)
  model = SRModel(cfg, _params(cfg, 3))
  low = np.random.default_rng(0).random((37, 45, 3)).astype(np.float32)
  whole = np.asarray(super_resolve(model, low, tile=None))
  tiled = np.asarray(super_resolve(model, low, tile=32))
  assert tiled.shape == (74, 90, 3)
  np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0)
  assert np.abs(whole - np.asarray(super_resolve(model, low))).max() <= 1e-5  # default tiled


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8"])
def test_bad_tile_is_an_input_error(bad):
  model = SRModel(SRCNNConfig(f1=3, f2=1, f3=3, n1=2, n2=2, scale=2),
                  _params(SRCNNConfig(f1=3, f2=1, f3=3, n1=2, n2=2, scale=2), 0))
  with pytest.raises(InputError, match="tile must be a positive integer"):
    super_resolve(model, np.zeros((8, 8, 1), np.float32), tile=bad)


def test_cli_upscale_tile_option(tmp_path, capsys):
  src = tmp_path / "a.png"
  Image.fromarray((np.random.default_rng(1).random((21, 26)) * 255).astype(np.uint8)).save(src)
  outs = []
  for tile in ("0", "16", None):
    dst = tmp_path / f"b{tile}.png"
    args = ["sr", "upscale", "--scale", "2", str(src), str(dst)]
    assert main(args + ([] if tile is None else ["--tile", tile])) == 0
    outs.append(np.asarray(Image.open(dst), np.int16))
  assert outs[0].shape == (42, 52)
  for o in outs[1:]:
    assert np.abs(o - outs[0]).max() <= 1  # same network output, 8-bit rounding aside
  assert main(["sr", "upscale", "--scale", "2", "--tile", "-1", str(src),
               str(tmp_path / "c.png")]) == 2
  assert "--tile must be >= 0" in capsys.readouterr().err
