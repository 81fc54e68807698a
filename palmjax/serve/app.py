"""The Starlette ASGI application of ``palmjax serve``.

Routes (JSON; the schema at ``/openapi.json``):

* ``GET /healthz`` - the process answers; ``GET /readyz`` - models loaded and compiled;
* ``POST /v1/palm/detect`` (terminal) - a capture in the body (PNG/TIFF/JPEG/BMP/NPY/DICOM);
  the record ``palmjax palm detect`` prints, plus ``request_id``;
* ``POST /v1/face/check`` (terminal) - a session ``.npz`` (frames, timestamps, optional echo,
  enrolled image; as ``palmjax face simulate`` writes) in the body; the record ``palmjax
  face check`` prints, plus ``request_id``;
* ``POST /v1/feedback`` (reviewer) - ``{"record_id", "label": "live"|"spoof"}``: the palm
  capture with its reviewed label into the P6 field store (:class:`palmjax.palm.store.FieldStore`);
* ``GET /v1/records/{id}``, ``GET /v1/records?since=&limit=`` (reviewer) - the audit store.

Status codes: 401 no or unknown key, 403 wrong role, 429 past the key's rate, 413 body too
large, 400 bad input (the :class:`~palmjax.errors.InputError` message), 503 not ready or
shutting down. Errors are ``{"error": message, "request_id": ...}``; a traceback never
leaves the server (it goes to the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import logging
import time
import uuid
from typing import Any

from palmjax.errors import InputError
from palmjax.extras import require
from palmjax.serve import batching, engine as engine_lib, keys as keys_lib, review
from palmjax.serve.store import AuditRecord, AuditStore

_WHY = "palmjax serve"
Starlette = require("starlette.applications", _WHY).Starlette
run_in_threadpool = require("starlette.concurrency", _WHY).run_in_threadpool
HTTPException = require("starlette.exceptions", _WHY).HTTPException
Request = require("starlette.requests", _WHY).Request
JSONResponse = require("starlette.responses", _WHY).JSONResponse
Route = require("starlette.routing", _WHY).Route

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
  rate: float = 20.0              # requests per second per key (token refill)
  burst: int = 50                 # requests one key may send at once
  max_body_bytes: int = 32 << 20
  max_batch: int | None = None    # default: the engine's largest bucket; 1 = no batching
  max_wait_ms: float = 2.0
  field_store: str = "field_store.sqlite"
  tune_dir: str = "runs/serve_tune"   # the review page's tune runs; the tuned model goes to
                                      # <tune_dir>/classifier (the served one is unchanged)
  tune_steps: int = 300
  max_records: int = 1000         # most records one /v1/records call returns


@dataclasses.dataclass(frozen=True)
class _Job:
  request_id: str
  key_id: str
  work: Any                       # engine.PalmJob | engine.FaceJob


def _request_id(request: Request) -> str:
  """The request's id (made on first use): in its answer, its error and the audit store."""
  if not hasattr(request.state, "request_id"):
    request.state.request_id = uuid.uuid4().hex
  return request.state.request_id


def _process(eng: engine_lib.Engine, store: AuditStore, jobs: list[_Job]) -> list[Any]:
  """One batch on the worker thread: inference, then every answer committed to the audit
  store in one transaction before any future is resolved."""
  palm = [i for i, j in enumerate(jobs) if isinstance(j.work, engine_lib.PalmJob)]
  results: list[Any] = [None] * len(jobs)
  if palm:
    for i, rec in zip(palm, eng.run_palm([jobs[i].work for i in palm])):
      results[i] = rec
  for i, j in enumerate(jobs):
    if isinstance(j.work, engine_lib.FaceJob):
      try:
        results[i] = eng.run_face(j.work)
      except InputError as e:  # a malformed session fails its own request only
        results[i] = e
  now = time.time()
  audit = []
  for j, r in zip(jobs, results):
    if isinstance(r, Exception):
      continue
    kind = "palm" if isinstance(j.work, engine_lib.PalmJob) else "face"
    decision, prob, reason = engine_lib.summary(kind, r)
    audit.append(AuditRecord(j.request_id, now, j.key_id, kind, decision, prob, reason,
                             eng.versions, r, j.work.capture if kind == "palm" else None))
  store.add_many(audit)
  return results


def record_feedback(store: AuditStore, field_store: str, record_id: str, label: str
                    ) -> dict[str, Any]:
  """A reviewer's ``label`` (live | spoof) for a palm audit record: its capture, verdict
  and probability into the P6 field store (what ``palmjax palm tune`` learns from)."""
  from palmjax.palm.store import FieldStore
  rec = store.get(record_id)
  if rec is None:
    raise HTTPException(404, f"no record {record_id!r}")
  if rec.kind != "palm" or rec.capture is None:
    raise InputError(f"record {rec.id}: feedback tunes the palm classifier (P6); this is a "
                     f"{rec.kind} record")
  verdict = {"live": 1, "spoof": 0}.get(rec.decision)
  with FieldStore(field_store) as fs:
    fid = fs.add(rec.capture, label=label, verdict=verdict, probability=rec.probability,
                 device_id=rec.key_id,
                 bit_depth=int((rec.record.get("input") or {}).get("bit_depth", 16)),
                 source=f"audit:{rec.id}", model=rec.models["palm_classifier"]["path"])
    counts = fs.counts()
  return {"id": fid, "record_id": rec.id, "verdict": rec.decision, "label": label,
          "mistake": verdict is not None and verdict != (label == "live"), **counts}


def create_app(eng: engine_lib.Engine, store: AuditStore, keyring: keys_lib.KeyRing,
               config: ServerConfig = ServerConfig(), *, warm: bool = True) -> Starlette:
  """The application. ``warm``: compile the models in the background at start-up
  (``/readyz`` answers 503 until done); otherwise the app is ready at once."""
  limiter = keys_lib.RateLimiter(config.rate, config.burst)
  state: dict[str, Any] = {"ready": not warm, "batcher": None}

  def auth(request: Request, role: str, *, cookie: bool = False) -> keys_lib.Key:
    """The request's key, checked for ``role`` and its rate; ``cookie``: the review page
    may also carry the key in its (HttpOnly, SameSite=Strict) cookie."""
    h = request.headers.get("authorization", "")
    token = h[7:].strip() if h[:7].lower() == "bearer " else None
    if token is None and cookie:
      token = request.cookies.get(review.COOKIE)
    key = keyring.lookup(token)
    if key is None:
      raise HTTPException(401, "missing or unknown API key (send 'Authorization: Bearer <key>')",
                   {"WWW-Authenticate": "Bearer"})
    if key.role != role:
      raise HTTPException(403, f"key {key.name!r} has role {key.role}; this endpoint needs "
                          f"{role}")
    if not limiter.allow(key.name):
      raise HTTPException(429, f"key {key.name!r} is over its rate limit ({config.rate:g}/s, "
                          f"burst {config.burst})", {"Retry-After": "1"})
    return key

  async def body(request: Request) -> bytes:
    cl = request.headers.get("content-length")
    if cl and cl.isdigit() and int(cl) > config.max_body_bytes:
      raise HTTPException(413, f"request body of {int(cl)} bytes exceeds the "
                          f"{config.max_body_bytes}-byte limit")
    chunks, n = [], 0
    async for c in request.stream():
      n += len(c)
      if n > config.max_body_bytes:
        raise HTTPException(413, f"request body exceeds the {config.max_body_bytes}-byte limit")
      chunks.append(c)
    return b"".join(chunks)

  async def upload(request: Request) -> tuple[bytes, str | None, str | None]:
    """(bytes, content type, file name) of the capture: the body itself, or the one file of
    a multipart/form-data body (``curl -F image=@capture.png``)."""
    data = await body(request)
    ctype = request.headers.get("content-type")
    name = request.query_params.get("filename")
    if (ctype or "").lower().startswith("multipart/form-data"):
      require("python_multipart", "multipart uploads")
      request._body = data  # already read (and size-checked): Starlette parses it from here
      form = await request.form(max_files=1, max_fields=16)
      try:
        files = [v for _, v in form.multi_items() if not isinstance(v, str)]
        if len(files) != 1:
          raise InputError("multipart upload: send exactly one file field, e.g. "
                           "curl -F image=@capture.png")
        data, ctype, name = await files[0].read(), files[0].content_type, \
            name or files[0].filename
      finally:
        await form.close()
    return data, ctype, name

  async def infer(request: Request, key: keys_lib.Key, work: Any) -> JSONResponse:
    batcher = state["batcher"]
    if batcher is None:
      raise HTTPException(503, "the server is starting or shutting down")
    rid = _request_id(request)
    try:
      rec = await batcher(_Job(rid, key.name, work))
    except batching.Closed as e:
      raise HTTPException(503, str(e)) from None
    return JSONResponse({"request_id": rid, **rec}, headers={"X-Request-Id": rid})

  def _flag(request: Request, name: str) -> bool:
    v = request.query_params.get(name, "0").lower()
    if v not in ("0", "1", "true", "false", "yes", "no"):
      raise InputError(f"query parameter {name}={v!r}: use 0/1 or true/false")
    return v in ("1", "true", "yes")

  def _float(request: Request, name: str, default: float | None = None) -> float | None:
    v = request.query_params.get(name)
    if v is None or v == "":
      return default
    try:
      return float(v)
    except ValueError:
      try:  # an ISO 8601 time (since=)
        t = datetime.datetime.fromisoformat(v)
        if t.tzinfo is None:
          t = t.replace(tzinfo=datetime.timezone.utc)
        return t.timestamp()
      except ValueError:
        raise InputError(f"query parameter {name}={v!r} is not a number or ISO time") from None

  async def palm_detect(request: Request) -> JSONResponse:
    key = auth(request, "terminal")
    work = await run_in_threadpool(eng.decode_palm, *await upload(request))
    return await infer(request, key, work)

  async def face_check(request: Request) -> JSONResponse:
    key = auth(request, "terminal")
    sim = _float(request, "similarity_threshold")
    acoustic = not _flag(request, "no_acoustic")
    work = await run_in_threadpool(eng.decode_face, *await upload(request),
                                   acoustic_hardware=acoustic, similarity_threshold=sim)
    return await infer(request, key, work)

  async def feedback(request: Request) -> JSONResponse:
    auth(request, "reviewer")
    data = await body(request)
    try:
      msg = json.loads(data or b"null")
    except ValueError as e:
      raise InputError(f"feedback: the body is not JSON ({e})") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("record_id"), str) or \
        msg.get("label") not in ("live", "spoof"):
      raise InputError('feedback: send {"record_id": "<id>", "label": "live" | "spoof"}')
    return JSONResponse(await run_in_threadpool(record_feedback, store, config.field_store,
                                                msg["record_id"], msg["label"]))

  async def record(request: Request) -> JSONResponse:
    auth(request, "reviewer")
    rec = await run_in_threadpool(store.get, request.path_params["record_id"])
    if rec is None:
      raise HTTPException(404, f"no record {request.path_params['record_id']!r}")
    return JSONResponse(rec.to_dict())

  async def records(request: Request) -> JSONResponse:
    auth(request, "reviewer")
    since = _float(request, "since")
    limit = _float(request, "limit", 50)
    if limit != int(limit) or not 1 <= limit <= config.max_records:
      raise InputError(f"limit must be an integer in 1..{config.max_records}, got {limit:g}")
    recs = await run_in_threadpool(lambda: store.list(since=since, limit=int(limit)))
    return JSONResponse([r.to_dict() for r in recs])

  async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})

  async def readyz(request: Request) -> JSONResponse:
    if not state["ready"] or state["batcher"] is None:
      return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "models": eng.versions,
                         "compute": {"buckets": list(eng.buckets),
                                     "per_capture_ms": eng.per_capture_ms}})

  async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(OPENAPI)

  @contextlib.asynccontextmanager
  async def lifespan(app: Starlette):
    batcher = batching.MicroBatcher(lambda jobs: _process(eng, store, jobs),
                                    max_batch=config.max_batch or eng.max_batch,
                                    max_wait_ms=config.max_wait_ms)
    state["batcher"] = batcher
    app.state.batcher = batcher
    warm_task = None
    if warm:
      async def warm_up():
        await asyncio.to_thread(eng.warm)
        state["ready"] = True
        log.info("palmjax serve: models compiled, ready")
      warm_task = asyncio.create_task(warm_up())
    try:
      yield
    finally:
      state["batcher"] = None  # new requests get 503; the queued ones are drained
      await asyncio.to_thread(batcher.close)
      if warm_task is not None:
        warm_task.cancel()

  def error(request: Request, status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": message, "request_id": _request_id(request)}, status_code=status,
                        headers=headers)

  async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error(request, exc.status_code, str(exc.detail), exc.headers)

  async def input_error(request: Request, exc: InputError) -> JSONResponse:
    return error(request, 400, str(exc))

  async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("request %s failed", _request_id(request), exc_info=exc)
    return error(request, 500, f"internal error ({type(exc).__name__}); see the server log")

  routes = [
      Route("/healthz", healthz), Route("/readyz", readyz), Route("/openapi.json", openapi),
      Route("/v1/palm/detect", palm_detect, methods=["POST"]),
      Route("/v1/face/check", face_check, methods=["POST"]),
      Route("/v1/feedback", feedback, methods=["POST"]),
      Route("/v1/records", records), Route("/v1/records/{record_id}", record),
      *review.routes(auth=auth, body=body, store=store, config=config, engine=eng,
                     feedback=record_feedback),
  ]
  app = Starlette(routes=routes, lifespan=lifespan,
                  exception_handlers={HTTPException: http_error, InputError: input_error,
                                      Exception: internal_error})
  app.state.engine, app.state.store = eng, store
  return app


def _op(summary: str, role: str | None, body: dict | None = None, params=None,
        responses: dict | None = None) -> dict:
  op: dict[str, Any] = {"summary": summary, "responses": {
      "200": {"description": "OK", "content": {"application/json": {}}}, **(responses or {})}}
  if role:
    op["security"] = [{"bearer": []}]
    op["description"] = f"Needs a key with role {role}."
    op["responses"].update({"401": {"$ref": "#/components/responses/Error"},
                            "403": {"$ref": "#/components/responses/Error"},
                            "429": {"$ref": "#/components/responses/Error"}})
  if body:
    op["requestBody"] = {"required": True, "content": body}
    op["responses"].update({"400": {"$ref": "#/components/responses/Error"},
                            "413": {"$ref": "#/components/responses/Error"}})
  if params:
    op["parameters"] = params
  return op


def _q(name: str, type_: str, description: str, where: str = "query") -> dict:
  return {"name": name, "in": where, "required": where == "path",
          "schema": {"type": type_}, "description": description}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "palmjax liveness server", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {"Error": {"description": "error", "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "error": {"type": "string"}, "request_id": {"type": ["string", "null"]}}}}}}},
    },
    "paths": {
        "/healthz": {"get": _op("the process answers", None)},
        "/readyz": {"get": _op("models loaded and compiled", None,
                               responses={"503": {"description": "starting"}})},
        "/v1/palm/detect": {"post": _op(
            "palm liveness of one capture (the record of `palmjax palm detect`)", "terminal",
            {t: _BINARY for t in [*engine_lib.PALM_TYPES, "application/octet-stream",
                                  "multipart/form-data"]},
            [_q("filename", "string", "source name for the record (its suffix picks the "
                "format of an application/octet-stream body)")])},
        "/v1/face/check": {"post": _op(
            "face-terminal check of one session .npz (the record of `palmjax face check`)",
            "terminal", {t: _BINARY for t in [*engine_lib.FACE_TYPES,
                                              "application/octet-stream",
                                              "multipart/form-data"]},
            [_q("filename", "string", "source name for the record"),
             _q("no_acoustic", "boolean", "the terminal has no acoustic hardware"),
             _q("similarity_threshold", "number", "F1 threshold override")])},
        "/v1/feedback": {"post": _op(
            "a reviewed label for a palm record, into the P6 field store", "reviewer",
            {"application/json": {"schema": {"type": "object", "required": ["record_id", "label"],
                                             "properties": {"record_id": {"type": "string"},
                                                            "label": {"enum": ["live", "spoof"]}}}}},
            responses={"404": {"$ref": "#/components/responses/Error"}})},
        "/v1/records": {"get": _op(
            "audit records, newest first", "reviewer",
            params=[_q("since", "string", "Unix seconds or ISO 8601 time (exclusive)"),
                    _q("limit", "integer", "at most this many (default 50)")])},
        "/v1/records/{record_id}": {"get": _op(
            "one audit record", "reviewer", params=[_q("record_id", "string", "request id",
                                                       "path")],
            responses={"404": {"$ref": "#/components/responses/Error"}})},
    },
}
