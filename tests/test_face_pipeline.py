"""Face terminal (SPEC F1-F8): simulator, similarity, cue classifiers, fusion, decisions."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from palmjax import echo, face
from palmjax.errors import InputError
from palmjax.face import cues, decision

CFG = face.SessionConfig(size=48, n_frames=8)


@pytest.fixture(scope="module")
def batches():
  ids = np.arange(200, 206)
  return {k: face.simulate_batch(jax.random.key(3), k, 6, CFG, identities=ids)
          for k in ("live", "print", "impostor")}


def test_simulator_shapes_and_determinism(batches):
  r = batches["live"]
  assert r.frames.shape == (6, 8, 48, 48, 3) and r.enrolled.shape == (6, 48, 48, 3)
  assert r.frames.min() >= 0 and r.frames.max() <= 1
  assert np.all(np.diff(r.timestamps, axis=1) > 0)
  again = face.simulate_batch(jax.random.key(3), "live", 6, CFG, identities=np.arange(200, 206))
  np.testing.assert_array_equal(again.frames, r.frames)
  other = face.simulate_batch(jax.random.key(4), "live", 6, CFG, identities=np.arange(200, 206))
  assert np.abs(other.frames - r.frames).mean() > 1e-3


def test_live_has_parallax_print_moves_as_a_plane(batches):
  # LK flow: a 3D head (parallax over a static background, micro-motion, blinks) gives
  # more varied flow magnitudes than a sheet of paper moved rigidly by a homography.
  f = {k: np.expm1(cues.cue_features(batches[k].frames)["lighting"]) for k in ("live", "print")}
  i = cues.LIGHTING_FEATURES.index("temporal_change")
  assert np.median(f["live"][:, i]) > 1.2 * np.median(f["print"][:, i])
  j = cues.LIGHTING_FEATURES.index("magnitude_std")
  assert np.median(f["live"][:, j]) > np.median(f["print"][:, j])
  # Print: reduced saturation (gamut) -> lower mean S moment.
  hsv = {k: cues.cue_features(batches[k].frames)["colour"][:, 1] for k in ("live", "print")}
  assert hsv["live"].mean() > hsv["print"].mean()


def test_region_offsets_match_echo_geometry():
  p = face.simulate.identity_params(jax.random.key(0))
  offs = face.region_offsets_m(p)
  assert offs[0] == 0.0 and len(offs) == len(echo.REGIONS)
  assert all(0.01 < o < 0.05 for o in offs[1:])
  assert offs[1] == max(offs)  # eyes sit deepest behind the nose tip, as in echo's default
  q = face.region_offsets_m(p, quantum_m=0.002)
  assert all(abs(a - b) <= 0.001 + 1e-9 for a, b in zip(offs, q))


def test_similarity_gate(batches):
  d = face.lbp_descriptor(batches["live"].enrolled[0])
  assert d.shape == (8, 8, 10)
  np.testing.assert_allclose(d.sum(-1), 1.0, atol=1e-5)
  assert face.chi_square(d, d) == 0.0
  same = [face.similarity_score(batches["live"].frames[i], batches["live"].enrolled[i])
          for i in range(6)]
  imp = [face.similarity_score(batches["impostor"].frames[i], batches["impostor"].enrolled[i])
         for i in range(6)]
  # Similarity is the calibrated logistic of log-distance (SciPy's expit as the reference).
  from scipy.special import expit
  cal = face.LBP_EMBEDDING.to_similarity
  for s, b, i in [(s, "live", i) for i, s in enumerate(same)] + [
      (s, "impostor", i) for i, s in enumerate(imp)]:
    d = face.session_distance(batches[b].frames[i], batches[b].enrolled[i])
    assert s == pytest.approx(expit(-cal.slope * (np.log(d) - cal.log_d0)), rel=1e-9, abs=1e-12)
  thr = face.FaceCheckConfig().similarity_threshold
  assert thr == 0.5 and min(same) > 0.9 and np.median(imp) < 0.01
  assert np.mean(same) > np.mean(imp) + 0.7
  # Every live session against every enrolled image of this fixed set (48 px, 8 frames):
  # 6 genuine and 30 impostor pairs. Genuine all pass; the impostors that pass are the
  # pairs of identities with near-equal skin tone (measured: 3/30 here; 3.0 % on 200
  # unseen identities at 64 px); each session still matches its own enrolment best.
  live = batches["live"]
  emb = face.LBP_EMBEDDING
  fd = [emb.embed(f).mean(0) for f in live.frames]
  ed = [emb.embed(e) for e in live.enrolled]
  sim = np.array([[emb.to_similarity(emb.distance(a, b)) for b in ed] for a in fd])
  np.testing.assert_allclose(np.diag(sim), same, atol=1e-6)
  off = sim[~np.eye(6, dtype=bool)]
  assert np.diag(sim).min() > 0.9 and (off >= thr).sum() <= 3 and np.median(off) < 0.02
  assert np.all(sim.argmax(1) == np.arange(6)) and np.all(sim.argmax(0) == np.arange(6))
  # Pluggable embedding.
  emb = face.Embedding(embed=lambda x: np.asarray(x).mean((0, 1)),
                       distance=lambda a, b: float(np.abs(a - b).sum()),
                       to_similarity=lambda dd: 1.0 / (1.0 + dd), name="mean_colour")
  assert face.similarity_score(np.ones((2, 8, 8, 3)) * 0.5, np.ones((8, 8, 3)) * 0.5, emb) == 1.0


def test_chroma_descriptor_is_shading_invariant_and_sees_skin_tone():
  rng = np.random.default_rng(0)
  skin = np.array([0.8, 0.6, 0.5], np.float32)
  tex = (1 + 0.05 * rng.standard_normal((24, 24, 1))).astype(np.float32)
  img = skin * tex
  c = face.chroma_descriptor(img, eps=0.0)
  np.testing.assert_allclose(c, np.log(skin[[0, 2]] / skin[1]), atol=1e-5)
  # Any per-pixel intensity factor (shading, exposure) leaves it unchanged.
  shade = np.linspace(0.3, 1.0, 24, dtype=np.float32)[None, :, None]
  np.testing.assert_allclose(face.chroma_descriptor(img * shade, eps=0.0), c, atol=1e-5)
  # Batched = per image; the face descriptor ends with it.
  b = face.chroma_descriptor(np.stack([img, img * 0.5]), eps=0.0)
  np.testing.assert_allclose(b, [c, c], atol=1e-5)
  fd = face.face_descriptor(img)
  assert fd.shape == (8 * 8 * 10 + 2,) and face.face_distance(fd, fd) == 0.0
  darker = img * np.array([0.56, 0.45, 0.4], np.float32)  # another skin tone, same texture
  d = face.face_distance(face.face_descriptor(darker), fd)
  assert d > 5.0  # the chromaticity term alone is ~ |log ratio change| / 0.01
  with pytest.raises(InputError, match="RGB"):
    face.chroma_descriptor(np.zeros((8, 8)))
  with pytest.raises(InputError, match="too small"):
    face.chroma_descriptor(np.zeros((4, 4, 3)))
  with pytest.raises(InputError, match="descriptors"):
    face.face_distance(fd, fd[:-1])


def test_calibrate_similarity():
  rng = np.random.default_rng(1)
  g = np.exp(rng.normal(-0.3, 0.3, 400))    # genuine distances around 0.74
  i = np.exp(rng.normal(2.0, 0.5, 400))     # impostors around 7.4
  cal = face.calibrate_similarity(g, i)
  assert cal.slope > 0 and -0.3 < cal.log_d0 < 2.0
  assert cal(np.exp(cal.log_d0)) == pytest.approx(0.5)
  assert cal(0.5) > 0.95 and cal(20.0) < 0.05 and cal(0.0) <= 1.0
  s_g, s_i = np.array([cal(x) for x in g]), np.array([cal(x) for x in i])
  assert (s_g >= 0.5).mean() > 0.98 and (s_i >= 0.5).mean() < 0.02
  emb = face.lbp_chroma_embedding(calibration=cal)
  assert emb.to_similarity is cal and emb.batched
  with pytest.raises(InputError, match="not smaller"):
    face.calibrate_similarity(i, g)
  with pytest.raises(InputError, match="at least 2"):
    face.calibrate_similarity([1.0], i)
  with pytest.raises(InputError, match=">= 0"):
    face.calibrate_similarity([-1.0, 1.0], i)


def test_cue_classifier_learns_and_calibrates():
  rng = np.random.default_rng(0)
  n = 400
  y = (rng.random(n) < 0.3).astype(np.float32)
  x = rng.normal(size=(n, 5)).astype(np.float32) + 3.0 * y[:, None] * np.array([1, -1, 0, 0, 0])
  for hidden in (0, 8):
    cfg = cues.CueClassifierConfig(cue="t", n_features=5, hidden=hidden, steps=300)
    params, m = cues.fit(cfg, x[:280], y[:280], x[280:], y[280:])
    assert m["calibration_accuracy"] > 0.93, m
    p = np.asarray(cues.probability(params, x[280:]))
    assert p[y[280:] == 1].mean() > 0.7 and p[y[280:] == 0].mean() < 0.3
  with pytest.raises(InputError):
    cues.fit(cfg, x, np.ones(n), x, y)


def test_shipped_cue_models_separate_live_from_print(batches):
  models = face.load_models(face.sim_models_path())
  p = {k: models.batch_probabilities(batches[k].frames) for k in ("live", "print")}
  for c in face.CUES:
    assert p["live"][c].mean() > p["print"][c].mean(), c
  assert p["print"]["texture"].max() < 0.5


def test_fusion_rules():
  cfg = face.ImageFusionConfig()
  f = face.fuse_image(0.9, 0.8, 0.7, 12, 1.0, cfg)
  assert f.passed and f.branch == "min" and f.probability == pytest.approx(0.7)
  f = face.fuse_image(0.1, 0.9, 0.9, 12, 1.0, cfg)
  assert not f.passed and f.failed_cue == "colour" and "colour" in f.reason
  f = face.fuse_image(0.95, 0.95, 0.25, 12, 1.0, dataclasses.replace(cfg, discard_aberrant=True))
  assert f.discarded == "lighting" and f.passed and f.probability == pytest.approx(0.95)
  f = face.fuse_image(0.95, 0.95, 0.25, 12, 1.0, cfg)
  assert not f.passed and f.discarded is None
  # Too few frames: accuracy 4/8 * 0.3/0.5 = 0.3, lighting shrunk toward the prior.
  f = face.fuse_image(0.9, 0.9, 1.0, 4, 0.3, cfg)
  assert f.accuracy == pytest.approx(0.3) and f.branch == "corrected_min"
  assert f.corrected_lighting == pytest.approx(0.3 * 1.0 + 0.7 * 0.5)
  f = face.fuse_image(0.9, 0.9, 1.0, 4, 0.3, dataclasses.replace(cfg, insufficient_combine="mean"))
  assert f.probability == pytest.approx((0.9 + 0.9 + 0.3 * 0.65) / 2.3)


# ---------------------------------------------------------------------------------------
# Decision branches with constructed inputs.

def _session(n=8, size=32, echo_rec=True, seed=0):
  rng = np.random.default_rng(seed)
  base = rng.random((size, size, 3)).astype(np.float32)
  frames = np.stack([np.clip(base + 0.01 * rng.standard_normal(base.shape), 0, 1)
                     for _ in range(n)]).astype(np.float32)
  rec = echo.Recording(np.zeros(96_000, np.float32), 96_000.0) if echo_rec else None
  return face.Session(frames=frames, timestamps=np.arange(n) / 10.0, recording=rec), base


class _Models:
  face_size = 0  # whole-frame models (no face detection)

  def __init__(self, probs):
    self.probs = probs
    self.embedding = face.LBP_EMBEDDING

  def cue_probabilities(self, frames):
    return dict(self.probs)


def _echo(decision_, acoustic=None, fused=None, periods=None):
  return echo.LivenessRecord(decision=decision_, reason="constructed", stage="x",
                             acoustic_probability=acoustic, fused_probability=fused,
                             period_probabilities=periods or {})


THR = echo.FusionConfig().live_threshold
GOOD = {"colour": 0.9, "texture": 0.9, "lighting": 0.9}
BAD = {"colour": 0.9, "texture": 0.1, "lighting": 0.9}
LOW = {"colour": 0.45, "texture": 0.45, "lighting": 0.45}


@pytest.mark.parametrize("probs,hw,echo_rec,expect,stage", [
    (GOOD, True, _echo("live", 0.9, 0.9), "proceed", "image"),
    (BAD, False, None, "paused", "image"),
    (BAD, True, _echo("cannot_decide"), "recapture", "acoustic"),
    (BAD, True, _echo("not_live", 0.0), "reject", "acoustic"),
    (BAD, True, _echo("live", 0.95, min(1.0, THR + 0.1)), "proceed", "acoustic"),
    # F8: fused just below the echo's live threshold; regions and combined score decide.
    (LOW, True, _echo("not_live", 1.0, THR - 0.02, {"nose": 0.9, "eyes": 0.1, "cheeks": 0.9,
                                                     "forehead": 0.9, "chin": 0.9}),
     "proceed", "f8"),
    (LOW, True, _echo("not_live", 0.6, THR - 0.1, {"nose": 0.9, "eyes": 0.1, "cheeks": 0.1,
                                                    "forehead": 0.9, "chin": 0.9}),
     "recapture", "f8"),
    (LOW, True, _echo("not_live", 0.6, 0.2, {"nose": 0.2, "eyes": 0.2, "cheeks": 0.2,
                                              "forehead": 0.9, "chin": 0.9}), "reject", "f8"),
])
def test_decision_branches(monkeypatch, probs, hw, echo_rec, expect, stage):
  sess, enrolled = _session(echo_rec=hw)
  monkeypatch.setattr(echo, "acoustic_liveness", lambda *a, **k: echo_rec)
  rec = face.check_session(sess, enrolled, _Models(probs),
                           face.FaceCheckConfig(acoustic_hardware=hw))
  assert (rec.outcome, rec.stage) == (expect, stage), rec.reason
  assert rec.outcome in decision.OUTCOMES and rec.reason
  d = rec.to_dict()
  assert d["similarity"] >= 0.5 and d["cue_probabilities"] == probs
  import json
  assert json.loads(rec.to_json())["outcome"] == expect
  if stage == "f8":
    assert rec.combined_score is not None and isinstance(rec.failing_regions, list)


def test_similarity_gate_rejects():
  sess, _ = _session()
  other = np.full((32, 32, 3), 0.5, np.float32)
  other[::2] = 0.2
  rec = face.check_session(sess, other, _Models(GOOD), face.FaceCheckConfig())
  assert rec.outcome == "reject" and rec.stage == "similarity"
  assert rec.similarity < 0.5 and rec.cue_probabilities == {}


def test_bad_input_never_proceeds():
  models = _Models(GOOD)
  sess, enr = _session()
  one = dataclasses.replace(sess, frames=sess.frames[:1], timestamps=sess.timestamps[:1])
  with pytest.raises(InputError, match="1 frame"):
    face.check_session(one, enr, models)
  ragged = dataclasses.replace(sess, frames=[sess.frames[0], sess.frames[1][:20]],
                               timestamps=sess.timestamps[:2])
  with pytest.raises(InputError, match="different sizes"):
    face.check_session(ragged, enr, models)
  with pytest.raises(InputError, match="timestamps: missing"):
    face.check_session(dataclasses.replace(sess, timestamps=None), enr, models)
  t = sess.timestamps.copy()
  t[3] = t[1]
  with pytest.raises(InputError, match="not strictly increasing"):
    face.check_session(dataclasses.replace(sess, timestamps=t), enr, models)
  with pytest.raises(InputError, match="enrolled"):
    face.check_session(sess, None, models)
  rec = face.check_session(dataclasses.replace(sess, recording=None), enr, models,
                   face.FaceCheckConfig(acoustic_hardware=True))
  assert rec.outcome == "recapture" and "no echo" in rec.reason


@pytest.mark.slow
def test_simulated_session_with_echo_end_to_end():
  scfg = face.SessionConfig(size=48, n_frames=8, echo=True)
  sess, enrolled = face.simulate_session(jax.random.key(1), "print", scfg, identity=7)
  assert isinstance(sess.recording, echo.Recording)
  er = echo.acoustic_liveness(sess.recording)
  assert er.decision != "live"  # a flat sheet: no time differences
  monkey = _Models(BAD)
  # The print's reduced gamut and paper tint shift the skin chromaticity: F1 stops it.
  rec = face.check_session(sess, enrolled, monkey, face.FaceCheckConfig())
  assert (rec.outcome, rec.stage) == ("reject", "similarity")
  # With the gate open, the cascade reaches the echo.
  rec = face.check_session(sess, enrolled, monkey, face.FaceCheckConfig(similarity_threshold=0.0))
  assert rec.outcome in ("reject", "recapture") and rec.acoustic is not None
