"""Suite ``sr``: SRCNN 9-5-5 (64/32) forward and train step, f32 and bf16, vs PyTorch.

Rows, measured in one run on the same shapes:

* forward (edge-padded input -> same-size output) and train step (Adam, MSE on the valid
  interior of patches with context, global-norm clip 1.0; ``palmjax.sr.train.train_step``
  through :func:`palmjax.parallel.data_parallel`) in Mpix/s of output, for float32 and
  bfloat16 compute (bf16: params and optimizer state f32, network in bf16). The peer is
  PyTorch eager with ``channels_last`` (forward: model and input in the compute dtype;
  train: f32 params under ``torch.autocast`` for bf16) when torch is importable; otherwise
  those columns stay empty.
* roofline columns: FLOPs per output pixel (analytic, the convolutions including the
  border context the valid convs compute; 114 kFLOP/px is the 9-5-5 64/32 interior figure)
  and XLA's own cost analysis of the compiled program (FLOPs and bytes accessed per
  pixel), plus the achieved GFLOP/s.
* device scaling: train step Mpix/s on a data mesh of 1, 2, 4, ... devices with the batch
  per device fixed (weak scaling). With CPU devices forced by
  ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` these devices share the same cores,
  so those rows are a functional check of the sharded path, not a speed-up.

Timing excludes compilation (warm-up) and host transfers (inputs placed on the device first).
"""

from __future__ import annotations

import argparse

DESCRIPTION = "SRCNN 9-5-5 forward/train Mpix/s, f32/bf16, vs PyTorch; device scaling"

# 9-5-5 with n1=64, n2=32, one channel: multiply-adds per pixel of each layer.
_MACS = (9 * 9 * 1 * 64, 5 * 5 * 64 * 32, 5 * 5 * 32 * 1)
FLOP_PER_PIXEL = 2 * sum(_MACS)  # 114_368: forward, interior pixels


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--size", type=int, default=None,
                      help="output image/patch side in pixels (default 64 on CPU, 256 on "
                           "an accelerator)")
  parser.add_argument("--batch", type=int, default=None,
                      help="images per step on one device (default 4 on CPU, 64 on an "
                           "accelerator)")
  parser.add_argument("--dtypes", default="float32,bfloat16",
                      help="compute dtypes, comma-separated (default float32,bfloat16)")
  parser.add_argument("--max-devices", type=int, default=0,
                      help="largest mesh in the scaling rows (default 0: all devices; "
                           "-1: no scaling rows)")
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
  parser.add_argument("--quick", action="store_true", help="fewer timing rounds")


def conv_flops(size: int, *, train: bool) -> float:
  """FLOPs of the three convolutions for one ``size x size`` output (context included).

  The valid convs run on the output plus the remaining receptive-field border: layer 1 on
  ``(size + 8)^2`` pixels, layer 2 on ``(size + 4)^2``, layer 3 on ``size^2``. A train step
  adds the backward pass: weight gradients for every layer and input gradients for layers
  2 and 3 (2x the forward, less layer 1's input gradient).
  """
  areas = ((size + 8) ** 2, (size + 4) ** 2, size ** 2)
  fwd = sum(2 * m * a for m, a in zip(_MACS, areas))
  if not train:
    return float(fwd)
  bwd = 2 * fwd - 2 * _MACS[0] * areas[0]
  return float(fwd + bwd)


def _xla_cost(compiled) -> tuple[float | None, float | None]:
  try:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0]
    # <= 0 means "not counted" (on GPU, cuDNN convolutions are custom calls XLA cannot cost).
    flops, nbytes = float(cost.get("flops", 0)), float(cost.get("bytes accessed", 0))
    return (flops if flops > 0 else None), (nbytes if nbytes > 0 else None)
  except Exception:  # noqa: BLE001 - not every backend reports a cost
    return None, None


def _torch_rows(torch, size: int, batch: int, dtype: str, timing: dict, time_call,
                device_kind: str = "cpu"):
  """(forward seconds, train-step seconds) of the PyTorch eager peer."""
  F, nn = torch.nn.functional, torch.nn

  torch.manual_seed(0)
  tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16,
            "float16": torch.float16}[dtype]
  r = 8

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.c1 = nn.Conv2d(1, 64, 9)
      self.c2 = nn.Conv2d(64, 32, 5)
      self.c3 = nn.Conv2d(32, 1, 5)

    def forward(self, x, pad=True):
      inp = x
      h = F.pad(x, (r, r, r, r), mode="replicate") if pad else x
      if not pad:
        inp = x[:, :, r:-r, r:-r]
      h = self.c3(F.relu(self.c2(F.relu(self.c1(h)))))
      return h + inp

  # The peer runs on the GPU when JAX does (and torch sees one), else on the CPU.
  dev = torch.device("cuda" if torch.cuda.is_available() and device_kind != "cpu" else "cpu")
  sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
  cl = torch.channels_last
  with torch.no_grad():
    net = Net().to(dev, memory_format=cl, dtype=tdtype).eval()
    x = torch.rand(batch, 1, size, size, dtype=tdtype, device=dev).contiguous(memory_format=cl)
    t_fwd = time_call(lambda: (net(x), sync()), **timing)

  net = Net().to(dev, memory_format=cl).train()
  opt = torch.optim.Adam(net.parameters(), lr=1e-4)
  xs = torch.rand(batch, 1, size + 2 * r, size + 2 * r, device=dev).contiguous(
      memory_format=cl)
  ys = torch.rand(batch, 1, size, size, device=dev).contiguous(memory_format=cl)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=tdtype, enabled=dtype != "float32"):
      pred = net(xs, pad=False)
    loss = torch.mean((pred.float() - ys) ** 2)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return loss

  t_train = time_call(lambda: step().item(), **timing)
  return t_fwd, t_train


def run(args: argparse.Namespace) -> list[dict]:
  import jax
  import jax.numpy as jnp
  import numpy as np

  from palmjax import parallel
  from palmjax.bench import time_call
  from palmjax.errors import InputError
  from palmjax.extras import require
  from palmjax.models import SRCNN, SRCNNConfig
  from palmjax.sr.train import SRTrainConfig

  cpu = jax.default_backend() == "cpu"  # small defaults on CPU; fill an accelerator
  size = int(args.size if args.size is not None else 64 if cpu else 256)
  batch = int(args.batch if args.batch is not None else 4 if cpu else 64)
  if size < 1 or batch < 1:
    raise InputError(f"--size and --batch must be >= 1, got {size}, {batch}")
  dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
  for d in dtypes:
    parallel.compute_dtype(d)  # validates
  timing = dict(repeats=3, min_time=0.1) if args.quick else dict(repeats=5, min_time=0.3)
  torch = None
  torch_note = "torch not installed"
  if not args.no_torch:
    try:
      torch = require("torch", "the PyTorch peer")
      torch_note = f"torch {torch.__version__} eager, channels_last"
    except InputError:  # the peer is optional: its column stays empty
      torch_note = "torch not installed (pip install 'palmjax[bench]')"
  else:
    torch_note = "--no-torch"

  mpix = batch * size * size / 1e6
  r = SRCNNConfig().radius
  rng = np.random.default_rng(0)
  rows = []

  def row(case, dtype, secs, peer_secs, flops, xla, devices=1, note=""):
    ours = mpix * devices / secs
    xf, xb = xla
    px = batch * size * size  # XLA's cost is per device (the SPMD program of one device)
    out = {"case": case, "dtype": dtype, "devices": devices,
           "input": f"{batch * devices}x{size}x{size}x1",
           "palmjax Mpix/s": ours,
           "peer": torch_note if case.startswith(("forward", "train")) and devices == 1
           else "", "peer Mpix/s": None, "speedup": None,
           "kFLOP/px": flops / (size * size) / 1e3,
           "XLA kFLOP/px": None if xf is None else xf / px / 1e3,
           "XLA bytes/px": None if xb is None else xb / px,
           "GFLOP/s": flops * batch * devices / secs / 1e9, "note": note}
    if peer_secs is not None:
      out["peer Mpix/s"] = mpix / peer_secs
      out["speedup"] = out["palmjax Mpix/s"] / out["peer Mpix/s"]
    return out

  for dname in dtypes:
    dt = parallel.compute_dtype(dname)
    # --- forward: edge-padded [B, S, S, 1] -> [B, S, S, 1] in the compute dtype.
    model = SRCNN(SRCNNConfig(), dtype=dt)
    params = model.init(jax.random.key(0), jnp.zeros((1, 17, 17, 1)))["params"]
    fwd = jax.jit(lambda p, x, m=model: m.apply({"params": p}, x))
    x = jax.device_put(jnp.asarray(rng.uniform(0, 1, (batch, size, size, 1)), dt))
    xla = _xla_cost(fwd.lower(params, x).compile())
    t_ours = time_call(lambda: fwd(params, x), **timing)
    peer_f = peer_t = None
    if torch is not None:
      peer_f, peer_t = _torch_rows(torch, size, batch, dname, timing, time_call,
                                   jax.default_backend())
    rows.append(row("forward", dname, t_ours, peer_f, conv_flops(size, train=False), xla))

    # --- train step (Adam, MSE, clip), through the data-parallel path on one device.
    cfg = SRTrainConfig(compute_dtype=dname, learning_rate=1e-4, schedule="constant",
                        warmup_steps=1, batch_size=batch, patch_size=size)
    t_train, xla = _time_train(cfg, 1, batch, size, r, rng, timing)
    rows.append(row("train step", dname, t_train, peer_t, conv_flops(size, train=True), xla))

  # --- device scaling (f32, batch per device fixed).
  n_all = jax.device_count()
  top = n_all if args.max_devices == 0 else min(args.max_devices, n_all)
  counts = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n <= top]
  for n in counts:
    cfg = SRTrainConfig(learning_rate=1e-4, schedule="constant", warmup_steps=1,
                        batch_size=batch * n, patch_size=size)
    t, xla = _time_train(cfg, n, batch * n, size, r, rng, timing)
    rows.append(row("scaling: train step", "float32", t, None, conv_flops(size, train=True),
                    xla, devices=n,
                    note="forced CPU devices share the cores: functional check only"
                    if cpu and n > 1 else ""))
  return rows


def _time_train(cfg, n_devices: int, global_batch: int, size: int, r: int, rng, timing):
  """Seconds per data-parallel train step on ``n_devices`` and XLA's cost of the step."""
  import jax

  from palmjax import parallel
  from palmjax.bench import time_call
  from palmjax.sr.train import create_train_state, train_step

  mesh = parallel.make_mesh(n_devices)
  step = parallel.data_parallel(train_step, mesh)
  holder = [parallel.replicate(create_train_state(jax.random.key(0), cfg), mesh)]
  xs = rng.uniform(0, 1, (global_batch, size + 2 * r, size + 2 * r, 1)).astype("float32")
  ys = rng.uniform(0, 1, (global_batch, size, size, 1)).astype("float32")
  b = parallel.shard_batch((xs, ys), mesh)
  xla = _xla_cost(step.jitted.lower(holder[0], b).compile())

  def call():
    holder[0], m = step(holder[0], b)
    return m["loss"]

  return time_call(call, **timing), xla
