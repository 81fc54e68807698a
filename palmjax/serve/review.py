"""The review page ``/review`` (reviewer key): the tuning loop's human step (P6).

Recent audit records with the capture image, the verdict and P(live); buttons that label a
palm record live / spoof (into the field store, as ``POST /v1/feedback``); a button that
starts ``palmjax palm tune`` on the stored mistakes in the background and shows its
before/after report. Plain server-rendered HTML. A browser cannot send a bearer header, so
the page logs in once with the reviewer key and keeps it in an HttpOnly, SameSite=Strict
cookie, accepted on ``/review`` routes only.
"""

from __future__ import annotations

import html
import io
import os
import threading
import time
import urllib.parse
from typing import Any, Callable

import numpy as np

from palmjax.errors import InputError
from palmjax.extras import require

COOKIE = "palmjax_review_key"
_resp = require("starlette.responses", "palmjax serve")
_routing = require("starlette.routing", "palmjax serve")
_concurrency = require("starlette.concurrency", "palmjax serve")
_exceptions = require("starlette.exceptions", "palmjax serve")

_STYLE = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{image-rendering:pixelated}
.live{color:#070}.spoof{color:#a00}.msg{background:#eef;padding:6px}"""


def _page(title: str, body: str, status: int = 200):
  return _resp.HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>"
                            f"{html.escape(title)}</title><style>{_STYLE}</style></head>"
                            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
                            status_code=status)


def _login(error: str = "", status: int = 200):
  err = f"<p class='msg'>{html.escape(error)}</p>" if error else ""
  return _page("palmjax review: sign in", f"""{err}<form method="post" action="/review/login">
<label>Reviewer key <input type="password" name="key" id="key" size="50"></label>
<button type="submit" id="login">Sign in</button></form>""", status)


def png(capture: np.ndarray) -> bytes:
  """A capture ``[H, W, 1]`` in [0, 1] as an 8-bit grey PNG."""
  from PIL import Image
  buf = io.BytesIO()
  x = np.clip(np.asarray(capture, np.float32)[..., 0], 0, 1)
  Image.fromarray(np.round(x * 255).astype(np.uint8)).save(buf, format="PNG")
  return buf.getvalue()


class Tuner:
  """One background ``palm tune`` at a time; its state for the page."""

  def __init__(self, field_store: str, classifier: str, tune_dir: str, steps: int):
    self.field_store, self.classifier, self.tune_dir, self.steps = (field_store, classifier,
                                                                    tune_dir, steps)
    self.lock = threading.Lock()
    self.running, self.report, self.error = False, None, None

  def start(self) -> bool:
    with self.lock:
      if self.running:
        return False
      self.running, self.error = True, None
    threading.Thread(target=self._run, name="palmjax-review-tune", daemon=True).start()
    return True

  def _run(self) -> None:
    from palmjax.palm import tune
    try:
      r = tune.tune(self.field_store, self.classifier,
                    os.path.join(self.tune_dir, f"run-{int(time.time())}"),
                    config=tune.TuneConfig(num_steps=self.steps),
                    publish_to=os.path.join(self.tune_dir, "classifier"), progress=False)
      self.report = {k: v for k, v in r.items() if k != "train"}
    except Exception as e:  # noqa: BLE001 - shown on the page
      self.error = f"{type(e).__name__}: {e}" if not isinstance(e, InputError) else str(e)
    finally:
      with self.lock:
        self.running = False

  def html(self) -> str:
    if self.running:
      state = "<p id='tune-state'>tuning is running&hellip; reload to see the report</p>"
    elif self.error:
      state = f"<p id='tune-state' class='msg'>tuning failed: {html.escape(self.error)}</p>"
    elif self.report:
      rows = "".join(
          f"<tr><td>{name}</td><td>{100 * m['holdout']['acer']:.2f}%</td>"
          f"<td>{100 * m['holdout']['apcer_worst']:.2f}%</td>"
          f"<td>{100 * m['holdout']['bpcer']:.2f}%</td>"
          f"<td>{100 * m['field_mistakes_now_correct']:.0f}%</td></tr>"
          for name, m in (("before", self.report["before"]), ("after", self.report["after"])))
      state = (f"<p id='tune-state'>tuned on {self.report['mistakes']} field mistakes; "
               f"published to {html.escape(str(self.report['published']))}</p>"
               "<table id='tune-report'><tr><th></th><th>ACER</th><th>APCER worst</th>"
               f"<th>BPCER</th><th>field mistakes now correct</th></tr>{rows}</table>")
    else:
      state = "<p id='tune-state'>not run yet</p>"
    return (f"<h2>Tuning (P6)</h2>{state}<form method='post' action='/review/tune'>"
            "<button type='submit' id='tune'>Tune on the stored mistakes</button></form>")


class _Bearer:
  """What the app's ``auth`` reads of a request, for a key typed into the login form."""

  def __init__(self, token: str):
    self.headers, self.cookies = {"authorization": f"Bearer {token}"}, {}


def _form(data: bytes) -> dict[str, str]:
  return {k: v[0] for k, v in urllib.parse.parse_qs(data.decode("utf-8", "replace")).items()}


def routes(*, auth: Callable, body: Callable, store: Any, config: Any, engine: Any,
           feedback: Callable) -> list:
  """The review routes; ``auth``, ``body``, ``feedback`` are the app's (see app.py)."""
  run = _concurrency.run_in_threadpool
  HTTPException = _exceptions.HTTPException
  tuner = Tuner(config.field_store, engine.versions["palm_classifier"]["path"],
                config.tune_dir, config.tune_steps)

  def reviewer(request):
    try:
      return auth(request, "reviewer", cookie=True)
    except HTTPException as e:
      if e.status_code in (401, 403):
        return None
      raise

  def back(msg: str):
    return _resp.RedirectResponse("/review?" + urllib.parse.urlencode({"msg": msg}),
                                  status_code=303)

  async def page(request):
    if reviewer(request) is None:
      return _login()
    recs = await run(lambda: store.list(limit=50))
    msg = request.query_params.get("msg")
    rows = []
    for r in recs:
      img = (f"<img src='/review/capture/{r.id}.png' width='128' height='128' alt='capture'>"
             if r.capture is not None else "")
      prob = "" if r.probability is None else f"{r.probability:.3f}"
      buttons = ""
      if r.kind == "palm":
        buttons = (f"<form method='post' action='/review/label'><input type='hidden' "
                   f"name='record_id' value='{r.id}'><button name='label' value='live' "
                   f"id='live-{r.id}'>live</button> <button name='label' value='spoof' "
                   f"id='spoof-{r.id}'>spoof</button></form>")
      when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created))
      rows.append(f"<tr id='rec-{r.id}'><td>{when}</td><td>{html.escape(r.key_id)}</td>"
                  f"<td>{r.kind}</td><td>{img}</td><td class='{html.escape(r.decision)}'>"
                  f"{html.escape(r.decision)}</td><td>{prob}</td>"
                  f"<td>{html.escape(r.reason)}</td><td>{buttons}</td></tr>")
    table = ("<table id='records'><tr><th>time (UTC)</th><th>key</th><th>kind</th>"
             "<th>capture</th><th>verdict</th><th>P(live)</th><th>reason</th>"
             f"<th>label</th></tr>{''.join(rows)}</table>" if rows else
             "<p>no records yet</p>")
    note = f"<p class='msg' id='msg'>{html.escape(msg)}</p>" if msg else ""
    return _page("palmjax review", f"{note}<h2>Recent decisions</h2>{table}{tuner.html()}")

  async def login(request):
    key = _form(await body(request)).get("key", "").strip()
    try:
      auth(_Bearer(key), "reviewer")
    except HTTPException as e:
      return _login(str(e.detail), e.status_code)
    resp = _resp.RedirectResponse("/review", status_code=303)
    resp.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/review")
    return resp

  async def capture(request):
    if reviewer(request) is None:
      raise HTTPException(401, "sign in at /review first")
    rec = await run(store.get, request.path_params["record_id"])
    if rec is None or rec.capture is None:
      raise HTTPException(404, "no capture for this record")
    return _resp.Response(await run(png, rec.capture), media_type="image/png")

  async def label(request):
    if reviewer(request) is None:
      return _login("sign in first", 401)
    f = _form(await body(request))
    if f.get("label") not in ("live", "spoof") or not f.get("record_id"):
      raise InputError("label: send record_id and label live | spoof")
    r = await run(feedback, store, config.field_store, f["record_id"], f["label"])
    what = "a mistake" if r["mistake"] else "agrees with the verdict"
    return back(f"labelled {r['record_id'][:8]} {r['label']} ({what}); field store: "
                f"{r['records']} records, {r['mistakes']} mistakes")

  async def tune(request):
    if reviewer(request) is None:
      return _login("sign in first", 401)
    started = tuner.start()
    return back("tuning started" if started else "tuning is already running")

  Route = _routing.Route
  return [Route("/review", page), Route("/review/login", login, methods=["POST"]),
          Route("/review/capture/{record_id}.png", capture),
          Route("/review/label", label, methods=["POST"]),
          Route("/review/tune", tune, methods=["POST"])]
