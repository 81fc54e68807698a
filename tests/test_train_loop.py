"""The shared training loop (palmjax.train_loop): draws, NaN step, history across resume."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state
from hypothesis import given, settings, strategies as st

from palmjax import checkpointing, train_loop
from palmjax.data import images
from palmjax.errors import InputError


def _problem(n=64, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 3)).astype(np.float32)
  y = (x @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.float32)
  return x, y


def _loss(params, batch):
  logits = batch["x"] @ params["w"] + params["b"]
  return optax.sigmoid_binary_cross_entropy(logits, batch["y"]).mean()


def _step(state, batch):
  loss, grads = jax.value_and_grad(_loss)(state.params, batch)
  return state.apply_gradients(grads=grads), {"loss": loss}


def _state(num_steps=12, lr=0.1):
  tx = optax.adam(train_loop.lr_schedule(lr, num_steps=num_steps, warmup_steps=2))
  return train_state.TrainState.create(
      apply_fn=None, params={"w": jnp.zeros(3), "b": jnp.zeros(())}, tx=tx)


def _run(x, y, workdir=None, **kw):
  data = train_loop.ArrayDataset({"x": x, "y": y}, batch_size=8)
  ckpts = None if workdir is None else checkpointing.RunCheckpoints(
      workdir, save_every=kw.get("save_every", 3), best_metric="acc")
  evaluate = lambda s: {"acc": float(np.mean(((x @ np.asarray(s.params["w"]) +
                                               float(s.params["b"])) > 0) == (y > 0)))}
  args = dict(key=jax.random.key(1), num_steps=12, eval_every=3, save_every=3, log_every=2,
              block_size=5, evaluate=evaluate, log=lambda s: None)
  args.update(kw)
  try:
    return train_loop.run(_state(args["num_steps"]), _step, data.draw_block, ckpts=ckpts,
                          **args)
  finally:
    if ckpts is not None:
      ckpts.close()


def test_docstring_example_runs():
  # The module docstring is the documented API of the in-memory convenience: it must run.
  # Its log lines go to the library logger; a CLI test earlier in the same process may have
  # routed that logger to stdout (palmjax.cli), which doctest would read as output.
  import logging
  lib = logging.getLogger("palmjax")
  handlers, propagate = lib.handlers[:], lib.propagate
  lib.handlers, lib.propagate = [], False
  try:
    res = doctest.testmod(train_loop, verbose=False)
  finally:
    lib.handlers, lib.propagate = handlers, propagate
  assert res.attempted >= 8 and res.failed == 0


@pytest.mark.slow
def test_history_is_continued_across_resume_and_parameters_are_identical(tmp_path):
  x, y = _problem()
  full = _run(x, y, tmp_path / "a")
  assert [h["step"] for h in full.history] == [3, 6, 9, 12]
  part = _run(x, y, tmp_path / "b", stop_after=7)
  assert part.stopped_by == "stop_after" and part.final_step == 7
  assert [h["step"] for h in part.history] == [3, 6, 7]  # the interrupt evaluates and saves
  msgs = []
  res = _run(x, y, tmp_path / "b", log=msgs.append)
  assert res.start_step == 7 and any("resumed from step 7" in m for m in msgs)
  # The resumed history holds the first session's entries and the second's.
  assert [h["step"] for h in res.history] == [3, 6, 7, 9, 12]
  for a, b in zip(full.history[:2], res.history[:2]):
    assert a == b
  assert res.history[-1]["acc"] == full.history[-1]["acc"]
  for u, v in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(res.state.params)):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
  # The history is stored in the checkpoint itself.
  with checkpointing.RunCheckpoints(tmp_path / "b", best_metric="acc") as ck:
    assert [h["step"] for h in ck.history(_state())] == [3, 6, 7, 9, 12]
    assert int(ck.restore_latest(_state()).step) == 12


@pytest.mark.slow
def test_run_directories_from_before_histories_still_resume(tmp_path):
  # Older runs saved the bare state (one unnamed orbax item): they resume with an empty
  # history, and the run goes on in the new layout.
  import orbax.checkpoint as ocp
  x, y = _problem()
  first = _run(x, y, stop_after=6, num_steps=12)
  with ocp.CheckpointManager(tmp_path / "latest",
                             options=ocp.CheckpointManagerOptions(create=True)) as m:
    m.save(6, args=ocp.args.StandardSave(first.state), force=True)
  msgs = []
  res = _run(x, y, tmp_path, log=msgs.append)
  assert res.start_step == 6 and any("resumed from step 6" in m for m in msgs)
  assert [h["step"] for h in res.history] == [9, 12]
  full = _run(x, y)
  for u, v in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(res.state.params)):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("bad_step", [1, 6, 7])
def test_non_finite_loss_names_its_step_and_nothing_after_it_is_saved(tmp_path, bad_step):
  x, y = _problem()

  def step(state, batch):
    state, m = _step(state, batch)
    return state, {"loss": jnp.where(state.step == bad_step, jnp.inf, m["loss"])}

  data = train_loop.ArrayDataset({"x": x, "y": y}, batch_size=8)
  with checkpointing.RunCheckpoints(tmp_path, save_every=4, best_metric="acc") as ck:
    with pytest.raises(FloatingPointError,
                       match=rf"loss became inf at step {bad_step}: the run diverged"):
      train_loop.run(_state(), step, data.draw_block, key=jax.random.key(0), num_steps=12,
                     ckpts=ck, evaluate=lambda s: {"acc": 0.5}, eval_every=4, save_every=4,
                     log_every=4, log=lambda s: None)
  saved = {int(p.name) for sub in ("latest", "best") for p in (tmp_path / sub).iterdir()
           if p.name.isdigit()}
  assert saved == ({4} if bad_step > 4 else set())


def test_stop_when_ends_the_run_at_a_log_point_after_saving_it(tmp_path):
  x, y = _problem()
  calls = []

  def stop(window):
    calls.append(window["loss"])
    return "good_enough" if len(calls) == 2 else None

  res = _run(x, y, tmp_path, stop_when=stop, log_every=2, eval_every=5, save_every=5)
  assert res.stopped_by == "good_enough" and res.final_step == 4 and len(calls) == 2
  assert [h["step"] for h in res.history] == [4]  # evaluated at the stop
  with checkpointing.RunCheckpoints(tmp_path, best_metric="acc") as ck:
    assert ck.latest_step() == 4


def _one(key):
  k1, k2 = jax.random.split(key)
  return {"u": jax.random.uniform(k1, (3,)), "i": jax.random.randint(k2, (2,), 0, 9)}


_DRAW = train_loop.block_draw(_one)
_ONE_AT = jax.jit(lambda key, step: _one(jax.random.fold_in(key, step)))


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31), start=st.integers(0, 2**30), n=st.integers(1, 4))
@pytest.mark.slow
def test_block_draw_equals_per_step_draws(seed, start, n):
  key = jax.random.key(seed)
  blk = _DRAW(key, start, n)
  for i in range(n):
    want = _ONE_AT(key, start + i)
    for k in want:
      np.testing.assert_array_equal(np.asarray(blk[k][i]), np.asarray(want[k]))


@pytest.fixture(scope="module")
def pool():
  rng = np.random.default_rng(3)
  shapes = [(20, 23), (17, 30), (25, 18)]
  hr = [rng.random((h, w, 1)).astype(np.float32) for h, w in shapes]
  return images.PairPool([h + 1.0 for h in hr], hr, ["a", "b", "c"], scale=2)


@pytest.fixture(scope="module")
def samplers(pool):
  out = {}
  for augment in (False, True):
    s = images.PatchSampler(pool, 4, 9, crop=2, augment=augment)
    out[augment] = s, jax.jit(lambda key, step, s=s: s.rows(jax.random.fold_in(key, step)))
  return out


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), start=st.integers(0, 2**30), n=st.integers(1, 4),
       augment=st.booleans())
@pytest.mark.slow
def test_sr_patch_block_draw_equals_per_step_draw_and_numpy_cut(pool, samplers, seed, start, n,
                                                                augment):
  size, crop, batch = 9, 2, 4
  sampler, rows_at = samplers[augment]
  key = jax.random.key(seed)
  xs, ys = sampler.draw_block(key, start, n)
  assert xs.shape == (n, batch, size, size, 1) and ys.shape == (n, batch, 5, 5, 1)
  for i in range(n):
    rows = np.asarray(rows_at(key, start + i))
    x1, y1 = sampler.draw_block(key, start + i, 1)
    np.testing.assert_array_equal(x1[0], xs[i])
    np.testing.assert_array_equal(y1[0], ys[i])
    for j, (img, top, left, aug) in enumerate(rows):  # NumPy reference: slice, transform
      assert 0 <= top <= pool.targets[img].shape[0] - size
      assert 0 <= left <= pool.targets[img].shape[1] - size
      assert augment or aug == 0
      win_x = np.rot90(pool.inputs[img][top:top + size, left:left + size][:, ::-1 if aug >= 4
                                                                          else 1], aug % 4)
      win_y = np.rot90(pool.targets[img][top:top + size, left:left + size][:, ::-1 if aug >= 4
                                                                           else 1], aug % 4)
      np.testing.assert_array_equal(xs[i, j], win_x)
      np.testing.assert_array_equal(ys[i, j], win_y[crop:size - crop, crop:size - crop])


def test_sr_patch_sampler_covers_images_by_area(pool):
  sampler = images.PatchSampler(pool, 64, 9, augment=True)
  rows = np.asarray(sampler._rows_block(jax.random.key(0), 0, 64)).reshape(-1, 4)
  weights = np.array([(20 - 8) * (23 - 8), (17 - 8) * (30 - 8), (25 - 8) * (18 - 8)])
  freq = np.bincount(rows[:, 0], minlength=3) / len(rows)
  np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.03)  # 4,096 draws
  assert set(np.unique(rows[:, 3])) == set(range(8))
  with pytest.raises(InputError, match="exceeds the smallest"):
    images.PatchSampler(pool, 4, 18)


def test_array_dataset_host_and_device_arrays_and_augment():
  x, y = _problem(10)
  key = jax.random.key(4)
  host = train_loop.ArrayDataset({"x": x, "y": y}, batch_size=6)
  dev = train_loop.ArrayDataset({"x": jnp.asarray(x), "y": jnp.asarray(y)}, batch_size=6)
  a, b = host.draw_block(key, 3, 4), dev.draw_block(key, 3, 4)
  assert isinstance(a["x"], np.ndarray) and isinstance(b["x"], jax.Array)
  idx = host.indices(key, 3, 4)
  assert idx.shape == (4, 6) and idx.min() >= 0 and idx.max() < 10
  for i in range(4):  # step 3 + i: rows from randint(split(fold_in(key, 3 + i))[0])
    k_idx = jax.random.split(jax.random.fold_in(key, 3 + i))[0]
    np.testing.assert_array_equal(idx[i], np.asarray(jax.random.randint(k_idx, (6,), 0, 10)))
    np.testing.assert_array_equal(a["x"][i], x[idx[i]])
  for k in a:
    np.testing.assert_array_equal(a[k], np.asarray(b[k]))
  neg = train_loop.ArrayDataset({"x": x, "y": y}, batch_size=6,
                                augment=lambda k, bt: {**bt, "x": -bt["x"]})
  np.testing.assert_array_equal(np.asarray(neg.draw_block(key, 3, 4)["x"]), -a["x"])
  assert host.block_size(max_bytes=6 * 4 * 4 * 10) == 10  # 6 rows x (3 + 1) float32 per step
  with pytest.raises(InputError, match="common first dimension"):
    train_loop.ArrayDataset({"x": x, "y": y[:5]}, batch_size=2)
  with pytest.raises(InputError, match="batch_size"):
    train_loop.ArrayDataset({"x": x}, batch_size=0)


def test_array_dataset_trains_a_small_classifier_without_checkpoints():
  # The in-memory path (no workdir): a tiny separable problem reaches ~all correct.
  x, y = _problem(256, seed=5)
  res = _run(x, y, num_steps=150, eval_every=50, log_every=25, block_size=40)
  assert res.stopped_by == "num_steps" and res.final_step == 150
  assert [h["step"] for h in res.history] == [50, 100, 150]
  assert res.history[-1]["acc"] >= 0.95 and res.history[-1]["loss"] < res.history[0]["loss"]
  assert res.best is res.state and res.best_value is None


def test_lr_schedule_warmup_clamp_and_shapes():
  s = train_loop.lr_schedule(1.0, num_steps=100, warmup_steps=10, end_fraction=0.02)
  assert float(s(0)) == 0.0 and float(s(5)) == pytest.approx(0.5)
  assert float(s(10)) == pytest.approx(1.0)
  assert float(s(55)) == pytest.approx(0.02 + 0.98 * 0.5, rel=1e-5)  # cosine midpoint
  assert float(s(100)) == pytest.approx(0.02)
  # The warm-up never covers the whole run; 0 means none (the first step at the peak).
  short = train_loop.lr_schedule(1.0, num_steps=3, warmup_steps=50)
  assert float(short(2)) == pytest.approx(1.0)
  assert float(train_loop.lr_schedule(1.0, num_steps=10, warmup_steps=0)(0)) == 1.0
  const = train_loop.lr_schedule(1.0, num_steps=10, warmup_steps=4, decay="constant")
  assert [float(const(i)) for i in (0, 2, 4, 9, 1000)] == [0.0, 0.5, 1.0, 1.0, 1.0]
  assert float(train_loop.lr_schedule(2.0, num_steps=5, warmup_steps=0,
                                      decay="constant")(0)) == 2.0
  with pytest.raises(InputError, match="decay"):
    train_loop.lr_schedule(1.0, num_steps=5, warmup_steps=0, decay="linear")
