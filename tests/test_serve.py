"""``palmjax serve``: auth, bad input, size limit, batching equivalence, audit store,
feedback into the P6 field store, and a real uvicorn process killed with SIGKILL.

One engine (shipped palm classifier, buckets 1 and 4; simulator face models) is shared by
the module: loading and compiling it is the cost of these tests.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import warnings

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("httpx", reason="the serve extra is not installed")

with warnings.catch_warnings():  # starlette >= 1.x suggests httpx2; httpx works
  warnings.simplefilter("ignore")
  from starlette.testclient import TestClient  # noqa: E402

from palmjax import face  # noqa: E402
from palmjax.face.session_io import save_npz  # noqa: E402
from palmjax.io import save_image  # noqa: E402
from palmjax.palm.store import FieldStore  # noqa: E402
from palmjax.serve import app as app_lib  # noqa: E402
from palmjax.serve import engine as engine_lib  # noqa: E402
from palmjax.serve.batching import MicroBatcher  # noqa: E402
from palmjax.serve.engine import Engine, EngineConfig  # noqa: E402
from palmjax.serve.keys import KeyRing, RateLimiter, add_key, load_keys  # noqa: E402
from palmjax.serve.store import AuditRecord, SQLiteAuditStore, open_store  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def engine():  # compiled on first use by the tests (Engine.warm would compile it all first)
  return Engine(EngineConfig(buckets=(1, 4)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """Keys, 5 hand-like palm captures as 16-bit PNG bytes, a face session .npz."""
  from radiographs import hand
  d = tmp_path_factory.mktemp("serve")
  keys = d / "keys.toml"
  tokens = {name: add_key(keys, name, role) for name, role in
            (("t1", "terminal"), ("t2", "terminal"), ("r1", "reviewer"))}
  pngs = []
  for i in range(5):
    save_image(d / f"c{i}.png", hand(64, 64, 6 + i, 8 + 2 * i, 44 - 2 * i, seed=i,
                                     noise=0.01 * (i + 1))[0], bit_depth=16)
    pngs.append((d / f"c{i}.png").read_bytes())
  rng = np.random.default_rng(0)
  base = rng.random((64, 64, 3)).astype(np.float32)
  frames = np.clip(base + 0.01 * rng.standard_normal((6, 64, 64, 3)), 0, 1).astype(np.float32)
  save_npz(d / "s.npz", face.Session(frames=frames, timestamps=np.arange(6) / 10.0), base)
  return {"dir": d, "keys": keys, "tokens": tokens, "pngs": pngs,
          "npz": (d / "s.npz").read_bytes()}


@pytest.fixture(scope="module")
def client(engine, files):
  d = files["dir"]
  store = SQLiteAuditStore(d / "audit.sqlite")
  app = app_lib.create_app(engine, store, KeyRing.from_file(files["keys"]),
                           app_lib.ServerConfig(max_body_bytes=1_000_000, max_wait_ms=20,
                                                field_store=str(d / "field.sqlite")),
                           warm=False)
  with TestClient(app, raise_server_exceptions=False) as c:
    c.store = store
    yield c
  store.close()


def _h(files, name):
  return {"Authorization": f"Bearer {files['tokens'][name]}"}


def _palm(c, files, i, who="t1"):
  return c.post("/v1/palm/detect", content=files["pngs"][i], params={"filename": f"c{i}.png"},
                headers={**_h(files, who), "Content-Type": "image/png"})


def test_keys_file_keeps_only_hashes_and_prints_the_key_last(files, tmp_path, capsys):
  text = files["keys"].read_text()
  assert all(tok not in text for tok in files["tokens"].values())
  ring = KeyRing(load_keys(files["keys"]))
  assert ring.lookup(files["tokens"]["r1"]).role == "reviewer"
  assert ring.lookup(files["tokens"]["r1"] + "x") is None and ring.lookup(None) is None
  from palmjax.cli import main
  assert main(["keys", "add", "--keys", str(tmp_path / "k.toml"), "--role", "reviewer", "n"]) == 0
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert KeyRing.from_file(tmp_path / "k.toml").lookup(last).name == "n"
  assert main(["keys", "add", "--keys", str(tmp_path / "k.toml"), "--role", "terminal", "n"]) == 2


def test_rate_limiter_lets_a_burst_through_then_refills():
  rl = RateLimiter(rate=2.0, burst=50)
  assert sum(rl.allow("k", now=0.0) for _ in range(60)) == 50
  assert rl.allow("other", now=0.0)
  assert rl.allow("k", now=0.5) and not rl.allow("k", now=0.5)  # 0.5 s -> one token


def test_health_ready_and_openapi(client):
  assert client.get("/healthz").json() == {"status": "ok"}
  r = client.get("/readyz")
  assert r.status_code == 200 and len(r.json()["models"]["palm_classifier"]["params_sha256"]) == 16
  spec = client.get("/openapi.json").json()
  assert {"/v1/palm/detect", "/v1/face/check", "/v1/feedback", "/v1/records",
          "/v1/records/{record_id}"} <= set(spec["paths"])


def test_palm_detect_is_the_cli_record_and_is_audited(client, files, engine, capsys):
  r = _palm(client, files, 0)
  assert r.status_code == 200, r.text
  got = r.json()
  rid = got.pop("request_id")
  assert r.headers["x-request-id"] == rid
  from palmjax.cli import main
  path = files["dir"] / "c0.png"
  assert main(["palm", "detect", str(path)]) == 0
  cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  cli["source"] = "c0.png"
  assert got == cli
  a = client.store.get(rid)
  assert a.kind == "palm" and a.key_id == "t1" and a.decision == got["decision"]
  assert a.record == got and a.models == engine.versions
  assert a.capture.shape == (64, 64, 1)


def test_face_check_is_the_library_record(client, files, engine):
  r = client.post("/v1/face/check", content=files["npz"], params={"no_acoustic": "1"},
                  headers={**_h(files, "t2"), "Content-Type": "application/x-npz"})
  assert r.status_code == 200, r.text
  got = r.json()
  rid = got.pop("request_id")
  from palmjax.face.session_io import load_npz
  s = load_npz(files["dir"] / "s.npz")
  want = face.check_session(s, s.enrolled, engine.face, face.FaceCheckConfig(acoustic_hardware=False))
  want = json.loads(want.to_json())
  want["source"] = "session.npz"
  assert got == want
  assert client.store.get(rid).decision == want["outcome"]


@pytest.mark.parametrize("path,who,status", [
    ("/v1/palm/detect", None, 401), ("/v1/palm/detect", "bogus", 401),
    ("/v1/palm/detect", "r1", 403), ("/v1/records", "t1", 403), ("/v1/feedback", "t1", 403)])
def test_auth(client, files, path, who, status):
  h = {} if who is None else {"Authorization": "Bearer " + files["tokens"].get(who, "pj_nope")}
  r = client.post(path, content=b"x", headers=h) if path != "/v1/records" else \
      client.get(path, headers=h)
  assert r.status_code == status and "error" in r.json()


@pytest.mark.parametrize("body,ctype,msg", [
    (b"not a png", "image/png", "c0.png"),
    (b"", "image/png", "empty request body"),
    (b"GIF89a", "image/gif", "unsupported content type 'image/gif'"),
    (np.zeros((4, 4), np.uint8).tobytes(), "application/x-npy", "c0.png")])
def test_bad_palm_input_is_400_with_the_input_error(client, files, body, ctype, msg):
  r = client.post("/v1/palm/detect", content=body, params={"filename": "c0.png"},
                  headers={**_h(files, "t1"), "Content-Type": ctype})
  assert r.status_code == 400 and msg in r.json()["error"], r.text
  assert "Traceback" not in r.text and "/tmp" not in r.json()["error"]


def test_malformed_session_is_400(client, files):
  buf = io.BytesIO()
  np.savez(buf, frames=np.zeros((1, 8, 8, 3), np.float32), timestamps=np.zeros(1),
           enrolled=np.zeros((8, 8, 3), np.float32))
  r = client.post("/v1/face/check", content=buf.getvalue(),
                  headers={**_h(files, "t1"), "Content-Type": "application/x-npz"})
  assert r.status_code == 400 and "at least 2 consecutive frames" in r.json()["error"], r.text
  r = client.post("/v1/face/check", content=b"PK\x03\x04junk",
                  headers={**_h(files, "t1"), "Content-Type": "application/x-npz"})
  assert r.status_code == 400 and "not a readable NumPy .npz" in r.json()["error"]


def test_body_over_the_limit_is_413(client, files):
  r = client.post("/v1/palm/detect", content=b"\0" * 1_000_001,
                  headers={**_h(files, "t1"), "Content-Type": "image/png"})
  assert r.status_code == 413 and "limit" in r.json()["error"]

  def chunks():  # no Content-Length: counted while streaming
    for _ in range(101):
      yield b"\0" * 10_000
  r = client.post("/v1/palm/detect", content=chunks(),
                  headers={**_h(files, "t1"), "Content-Type": "image/png"})
  assert r.status_code == 413


def test_past_the_burst_is_429(engine, files, tmp_path):
  store = SQLiteAuditStore(tmp_path / "a.sqlite")
  app = app_lib.create_app(engine, store, KeyRing.from_file(files["keys"]),
                           app_lib.ServerConfig(rate=0.001, burst=3), warm=False)
  with TestClient(app) as c:
    codes = [c.get("/v1/records", headers=_h(files, "r1")).status_code for _ in range(5)]
  assert codes == [200, 200, 200, 429, 429]
  store.close()


def test_batched_answers_equal_single_answers(client, files):
  singles = [_palm(client, files, i).json() for i in range(5)]
  batcher = client.app.state.batcher
  n0 = len(batcher.batch_sizes)
  with concurrent.futures.ThreadPoolExecutor(5) as ex:  # 5 at once: batches of 4 (+1)
    batched = list(ex.map(lambda i: _palm(client, files, i).json(), range(5)))
  assert max(batcher.batch_sizes[n0:]) > 1, batcher.batch_sizes[n0:]
  for s, b in zip(singles, batched):
    assert s.pop("request_id") != b.pop("request_id")
    # float32 reductions over a different batch size may differ in the last bit
    assert b["decision"] == s["decision"] and b["quality"] == pytest.approx(s["quality"], rel=1e-5)
    assert b["probability"] == pytest.approx(s["probability"], abs=1e-6)
  assert {s["decision"] for s in singles} <= {"live", "spoof", "recapture"}


def test_records_feedback_and_field_store(client, files):
  earlier = [_palm(client, files, i).json()["request_id"] for i in (3, 4)]
  r = _palm(client, files, 1)
  rid = r.json()["request_id"]
  h = _h(files, "r1")
  listed = client.get("/v1/records", params={"limit": 3}, headers=h).json()
  assert [x["id"] for x in listed] == [rid, *earlier[::-1]]
  assert [x["created"] for x in listed] == sorted([x["created"] for x in listed], reverse=True)
  assert client.get("/v1/records", params={"since": listed[0]["created"]}, headers=h).json() == []
  assert client.get(f"/v1/records/{rid}", headers=h).json()["record"]["source"] == "c1.png"
  assert client.get("/v1/records/nope", headers=h).status_code == 404
  assert client.get("/v1/records", params={"limit": "x"}, headers=h).status_code == 400
  decision = r.json()["decision"]
  label = "spoof" if decision == "live" else "live"
  f = client.post("/v1/feedback", json={"record_id": rid, "label": label}, headers=h)
  assert f.status_code == 200, f.text
  assert f.json()["mistake"] == (decision in ("live", "spoof"))
  with FieldStore(files["dir"] / "field.sqlite") as fs:
    (s,) = [x for x in fs.all() if x.source == f"audit:{rid}"]
  assert s.label == (label == "live") and s.device_id == "t1"
  np.testing.assert_array_equal(s.pixels, client.store.get(rid).capture)
  bad = client.post("/v1/feedback", json={"record_id": rid, "label": "maybe"}, headers=h)
  assert bad.status_code == 400


def test_micro_batcher_drains_on_close_and_isolates_errors():
  seen = []

  def process(items):
    seen.append(list(items))
    time.sleep(0.01)
    return [ValueError(i) if i == 3 else i * 10 for i in items]

  mb = MicroBatcher(process, max_batch=4, max_wait_ms=50)
  futs = [mb.submit(i) for i in range(10)]
  mb.close()
  assert [f.exception() is not None for f in futs] == [i == 3 for i in range(10)]
  assert [f.result() for i, f in enumerate(futs) if i != 3] == [i * 10 for i in range(10) if i != 3]
  assert max(len(b) for b in seen) == 4 and sum(len(b) for b in seen) == 10
  with pytest.raises(RuntimeError, match="shutting down"):
    mb.submit(1)


def _pg_binaries() -> dict[str, str] | None:
  import glob
  import shutil
  dirs = [None, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
  for d in dirs:
    found = {n: shutil.which(n, path=d) for n in ("initdb", "pg_ctl")}
    if all(found.values()):
      return found
  return None


@pytest.fixture(scope="module")
def postgres_url():
  """A throwaway PostgreSQL server in a temporary folder (initdb + pg_ctl); its URL."""
  import pwd
  import shutil
  import tempfile
  pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
  bins = _pg_binaries()
  if bins is None:
    pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                "(Debian: apt-get install postgresql)")
  prefix: list[str] = []
  d = tempfile.mkdtemp(prefix="palmjax-pg-")
  if os.geteuid() == 0:  # initdb refuses root: run the server as the 'postgres' user
    try:
      user = pwd.getpwnam("postgres")
    except KeyError:
      shutil.rmtree(d)
      pytest.skip("running as root and there is no 'postgres' user (initdb refuses root)")
    os.chown(d, user.pw_uid, user.pw_gid)
    prefix = ["runuser", "-u", "postgres", "--"]
  port = _free_port()
  data = os.path.join(d, "data")
  try:
    subprocess.run([*prefix, bins["initdb"], "-D", data, "-A", "trust", "-U", "palmjax",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, bins["pg_ctl"], "-D", data, "-w", "-l", os.path.join(d, "log"),
                    "-o", f"-p {port} -k {d} -h 127.0.0.1 -F", "start"], check=True,
                   capture_output=True)
  except subprocess.CalledProcessError as e:
    shutil.rmtree(d, ignore_errors=True)
    pytest.fail(f"could not start PostgreSQL: {e.stderr.decode()[-1000:]}")
  yield f"postgresql://palmjax@127.0.0.1:{port}/postgres"
  subprocess.run([*prefix, bins["pg_ctl"], "-D", data, "-m", "immediate", "stop"],
                 capture_output=True)
  shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
  """Where an empty audit store is: a SQLite file, or the throwaway PostgreSQL server."""
  if request.param == "sqlite":
    return str(tmp_path / "a.sqlite")
  url = request.getfixturevalue("postgres_url")
  with open_store(url) as s:
    s._execute("DROP TABLE IF EXISTS decisions")  # a fresh table per test
  return url


@pytest.fixture
def audit_store(store_location):
  return open_store(store_location)


def test_audit_store_round_trip(audit_store):
  with audit_store as s:
    cap = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4, 1)
    s.add_many([AuditRecord(f"r{i}", 100.0 + i, "k", "palm", "live", 0.5 + i / 10, "why",
                            {"m": 1}, {"x": [i]}, cap if i else None) for i in range(3)])
    assert [r.id for r in s.list(since=100.0, limit=5)] == ["r2", "r1"]
    r = s.get("r1")
    assert r.record == {"x": [1]} and r.probability == pytest.approx(0.6)
    np.testing.assert_array_equal(r.capture, cap)
    assert s.get("r0").capture is None
    with pytest.raises(Exception, match="(?i)unique|duplicate"):  # all or none
      s.add_many([AuditRecord("r9", 1.0, "k", "face", "proceed", None, "", {}, {}),
                  AuditRecord("r1", 1.0, "k", "palm", "live", None, "", {}, {})])
    assert s.ids() == {"r0", "r1", "r2"}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def _served(files, tmp_path, store):
  """``palmjax serve --store STORE`` (uvicorn) in a subprocess on a free port, once it
  answers /healthz; yields its URL and the process, kills it on the way out."""
  import httpx
  port = _free_port()
  log = tmp_path / "serve.log"
  with open(log, "wb") as err:
    proc = subprocess.Popen(
        [sys.executable, "-m", "palmjax", "serve", "--port", str(port), "--store", str(store),
         "--keys", str(files["keys"]), "--max-batch", "2", "--rate", "1000", "--lazy",
         "--field-store", str(tmp_path / "f.sqlite")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
  url = f"http://127.0.0.1:{port}"
  try:
    deadline = time.monotonic() + 120
    while True:
      assert proc.poll() is None, log.read_text()[-3000:]
      try:
        if httpx.get(url + "/healthz", timeout=1).status_code == 200:
          break
      except httpx.TransportError:
        pass
      assert time.monotonic() < deadline, "server not ready in 120 s"
      time.sleep(0.25)
    yield url, proc
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait(10)


@pytest.mark.parametrize("store_location", ["postgresql"], indirect=True)
def test_a_server_on_postgresql_audits_and_lists_its_answers(files, tmp_path, store_location):
  import httpx
  with _served(files, tmp_path, store_location) as (url, _):
    with httpx.Client(base_url=url, timeout=120) as c:
      answers = [c.post("/v1/palm/detect", content=files["pngs"][i],
                        params={"filename": f"c{i}.png"},
                        headers={**_h(files, who), "Content-Type": "image/png"})
                 for i, who in ((0, "t1"), (1, "t2"))]
      assert [r.status_code for r in answers] == [200, 200], answers[0].text
      got = [r.json() for r in answers]
      rids = [g.pop("request_id") for g in got]
      with open_store(store_location) as s:  # committed before the answer was sent
        audited = [s.get(rid) for rid in rids]
      for a, g, key in zip(audited, got, ("t1", "t2")):
        assert (a.kind, a.key_id, a.decision, a.record) == ("palm", key, g["decision"], g)
        assert a.probability == pytest.approx(g["probability"]) and a.capture.shape == (64, 64, 1)
      assert g["source"] == "c1.png" and set(a.models) >= {"palm_classifier"}
      h = _h(files, "r1")
      listed = c.get("/v1/records", params={"limit": 5}, headers=h).json()
      assert [x["id"] for x in listed] == rids[::-1]
      assert [x["key_id"] for x in listed] == ["t2", "t1"]
      assert c.get("/v1/records", params={"since": listed[0]["created"]}, headers=h).json() == []
      one = c.get(f"/v1/records/{rids[0]}", headers=h).json()
      assert one["record"] == got[0] and one["decision"] == got[0]["decision"]
      assert c.get("/v1/records/nope", headers=h).status_code == 404


def test_sigkill_under_load_loses_no_answered_decision(files, tmp_path, store_location):
  import httpx
  with _served(files, tmp_path, store_location) as (url, proc):
    answered, stop = [], False

    def client(i):
      with httpx.Client(base_url=url, timeout=30) as c:
        while not stop:
          try:
            r = c.post("/v1/palm/detect", content=files["pngs"][i % 5],
                       headers={**_h(files, "t1"), "Content-Type": "image/png"})
          except httpx.TransportError:
            return
          if r.status_code == 200:
            answered.append(r.json()["request_id"])
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
      for i in range(6):
        ex.submit(client, i)
      deadline = time.monotonic() + 120
      while len(answered) < 30 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
      proc.send_signal(signal.SIGKILL)
      proc.wait(10)
      stop = True
  assert len(answered) >= 30
  with open_store(store_location) as s:
    ids = s.ids()
  missing = set(answered) - ids
  assert not missing, f"{len(missing)} answered decisions lost"


def test_review_page_with_an_http_client(client, files):
  assert "Sign in" in client.get("/review").text  # no cookie: the login form
  r = client.post("/review/login", data={"key": files["tokens"]["t1"]})
  assert r.status_code == 403 and "role terminal" in r.text
  rid = _palm(client, files, 2).json()["request_id"]
  r = client.post("/review/login", data={"key": files["tokens"]["r1"]}, follow_redirects=False)
  assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
  page = client.get("/review").text
  assert f"id='rec-{rid}'" in page and f"/review/capture/{rid}.png" in page
  img = client.get(f"/review/capture/{rid}.png")
  from PIL import Image
  got = np.asarray(Image.open(io.BytesIO(img.content)), np.float32) / 255
  np.testing.assert_allclose(got, client.store.get(rid).capture[..., 0], atol=0.5 / 255 + 1e-6)
  r = client.post("/review/label", data={"record_id": rid, "label": "live"})
  assert r.status_code == 200 and "labelled" in r.text
  with FieldStore(files["dir"] / "field.sqlite") as fs:
    assert any(x.source == f"audit:{rid}" and x.label == 1 for x in fs.all())
  # The cookie is for the review page only: the JSON API still wants the bearer header.
  assert client.get("/v1/records").status_code == 401
  client.cookies.clear()


def test_review_flow_in_a_headless_browser(engine, files, tmp_path, monkeypatch):
  """Chromium (Debian's chromium + chromium-driver) through Selenium against a real uvicorn
  server: sign in, see the capture, label a record, start tuning, read the report. The tune
  run itself is replaced by a stand-in (tests/test_palm_pipeline.py covers tune); it reads
  the real field store, so the page's report shows what the clicks wrote."""
  import shutil
  import threading

  import httpx
  import uvicorn
  webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait
  browser = shutil.which("chromium") or shutil.which("chromium-browser")
  driver_bin = shutil.which("chromedriver")
  if not (browser and driver_bin):
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium chromium-driver)")
  from palmjax.palm import tune as tune_lib
  calls = []

  def fake_tune(store_path, classifier, workdir, *, config, publish_to, progress):
    with FieldStore(store_path) as fs:
      n = fs.counts()["mistakes"]
    calls.append((store_path, config.num_steps, publish_to))
    m = lambda acer, fixed: {"holdout": {"acer": acer, "apcer_worst": 2 * acer, "bpcer": 0.0},
                             "field_mistakes_now_correct": fixed, "threshold": 0.5}
    return {"mistakes": n, "before": m(0.25, 0.0), "after": m(0.125, 1.0),
            "published": publish_to, "previous": None, "train": {}}
  monkeypatch.setattr(tune_lib, "tune", fake_tune)

  store = SQLiteAuditStore(tmp_path / "audit.sqlite")
  cfg = app_lib.ServerConfig(field_store=str(tmp_path / "field.sqlite"),
                             tune_dir=str(tmp_path / "tune"), tune_steps=7)
  app = app_lib.create_app(engine, store, KeyRing.from_file(files["keys"]), cfg, warm=False)
  port = _free_port()
  server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  url = f"http://127.0.0.1:{port}"
  opts = webdriver.ChromeOptions()
  opts.binary_location = browser
  for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1400,1000"):
    opts.add_argument(a)
  driver = None
  try:
    while not server.started:
      assert thread.is_alive()
      time.sleep(0.05)
    rids = [httpx.post(url + "/v1/palm/detect", content=files["pngs"][i],
                       headers={**_h(files, "t1"), "Content-Type": "image/png"},
                       timeout=60).json()["request_id"] for i in (0, 1)]
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_bin), options=opts)
    driver.implicitly_wait(60)  # a click that submits a form returns before the next page
    driver.get(url + "/review")
    driver.find_element(By.ID, "key").send_keys(files["tokens"]["r1"])
    driver.find_element(By.ID, "login").click()
    row = driver.find_element(By.ID, f"rec-{rids[0]}")
    img = row.find_element(By.TAG_NAME, "img")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                 img) == 64
    verdict = store.get(rids[0]).decision
    wrong = "spoof" if verdict == "live" else "live"
    def message(start):  # the page the form's POST redirected to, not the old one
      from selenium.common.exceptions import StaleElementReferenceException
      def seen(d):
        try:
          el = d.find_elements(By.ID, "msg")
          return el[0].text if el and el[0].text.startswith(start) else False
        except StaleElementReferenceException:
          return False
      return WebDriverWait(driver, 60, poll_frequency=0.1).until(seen)
    driver.find_element(By.ID, f"{wrong}-{rids[0]}").click()
    assert "labelled" in message("labelled")
    driver.implicitly_wait(0)
    # Wait for the POST's answer before navigating on (a navigation would cancel it).
    driver.find_element(By.ID, "tune").click()
    assert message("tuning") == "tuning started"
    deadline = time.monotonic() + 60  # the (stand-in) tune runs on a thread
    while time.monotonic() < deadline:
      driver.get(url + "/review")
      if driver.find_elements(By.ID, "tune-report"):
        break
      time.sleep(0.2)
    cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#tune-report td")]
    assert cells[:2] == ["before", "25.00%"] and cells[5:7] == ["after", "12.50%"]
    with FieldStore(cfg.field_store) as fs:
      (s,) = fs.all()
    assert s.source == f"audit:{rids[0]}" and s.label == (wrong == "live")
    assert calls == [(cfg.field_store, 7, os.path.join(cfg.tune_dir, "classifier"))]
    mistakes = int(verdict in ("live", "spoof"))
    assert f"tuned on {mistakes} field mistakes" in driver.find_element(By.ID, "tune-state").text
    if os.environ.get("PALMJAX_REVIEW_SCREENSHOT"):
      driver.save_screenshot(os.environ["PALMJAX_REVIEW_SCREENSHOT"])
  finally:
    if driver is not None:
      driver.quit()
    server.should_exit = True
    thread.join(30)
    store.close()


@pytest.mark.parametrize("buckets", [(1, 2, 4, 8, 16), (1, 4), (4, 8)])
def test_batches_split_into_bucket_sizes_with_little_padding(buckets):
  for n in range(1, 41):
    calls = engine_lib.chunks(n, buckets)
    assert sum(r for r, _ in calls) == n
    assert all(size in buckets and 1 <= r <= size for r, size in calls)
    padded = [(r, size) for r, size in calls if r < size]
    # padding only on the last call, at most a quarter of it unless no bucket is small enough
    assert all(c == calls[-1] for c in padded)
    if padded and min(buckets) <= padded[0][0]:
      assert padded[0][1] - padded[0][0] <= 0.25 * padded[0][1]
  chunks = functools.partial(engine_lib.chunks, buckets=buckets)
  if buckets == (1, 2, 4, 8, 16):
    assert chunks(9) == [(8, 8), (1, 1)] and chunks(15) == [(15, 16)]
    assert chunks(3) == [(3, 4)] and chunks(40) == [(16, 16), (16, 16), (8, 8)]
  if buckets == (4, 8):
    assert chunks(1) == [(1, 4)] and chunks(9) == [(8, 8), (1, 4)]


def test_autotune_keeps_the_buckets_up_to_the_cheapest_per_capture(monkeypatch):
  # The largest bucket within 5% of the cheapest per capture: 8 here (1.65 <= 1.6 * 1.05).
  assert engine_lib.fastest_bucket({1: 2.0, 2: 1.9, 4: 1.6, 8: 1.65, 16: 3.0}) == 8
  assert engine_lib.fastest_bucket({1: 1.0, 4: 1.2}) == 1
  eng = Engine.__new__(Engine)  # autotune() needs the config, the detector's size, a timer
  eng.config = EngineConfig(buckets=(1, 2, 4, 8, 16), autotune=True)
  eng.palm = types.SimpleNamespace(lr_size=8, detect=None)
  cost = {1: 4.5, 2: 4.1, 4: 3.7, 8: 5.7, 16: 4.5}  # measured on the 2-core CPU, ms/capture
  monkeypatch.setattr(engine_lib, "_time_bucket", lambda detect, b, s: cost[b])
  eng.autotune()
  assert eng.buckets == (1, 2, 4) and eng.per_capture_ms == cost
  assert eng.chunks(16) == [(4, 4)] * 4 and eng.chunks(3) == [(3, 4)]


def test_an_unexpected_failure_is_a_500_without_traceback_and_nothing_is_audited(
    client, files, monkeypatch):
  def broken(jobs):
    raise RuntimeError("disk on fire at /secret/path")
  monkeypatch.setattr(client.app.state.engine, "run_palm", broken)
  n = len(client.store.ids())
  r = _palm(client, files, 0)
  assert r.status_code == 500 and r.json()["error"] == (
      "internal error (RuntimeError); see the server log")
  assert "Traceback" not in r.text and "/secret" not in r.text
  assert len(client.store.ids()) == n  # no answer, no record


def test_multipart_uploads_give_the_same_record(client, files):
  raw = _palm(client, files, 3).json()
  r = client.post("/v1/palm/detect", files={"image": ("c3.png", files["pngs"][3], "image/png")},
                  headers=_h(files, "t1"))
  assert r.status_code == 200, r.text
  got = r.json()
  assert {k: v for k, v in got.items() if k != "request_id"} == \
      {k: v for k, v in raw.items() if k != "request_id"}
  two = client.post("/v1/palm/detect", headers=_h(files, "t1"),
                    files=[("a", ("c.png", files["pngs"][0], "image/png")),
                           ("b", ("d.png", files["pngs"][1], "image/png"))])
  assert two.status_code == 400, two.text
  r = client.post("/v1/face/check", params={"no_acoustic": "1"}, headers=_h(files, "t1"),
                  files={"session": ("s.npz", files["npz"], "application/octet-stream")})
  assert r.status_code == 200 and r.json()["source"] == "s.npz", r.text
