"""``palmjax serve``: the liveness server of the palm patent's deployment step (P7).

A capture device (or a face terminal) sends its capture over HTTP; the server holds both
pipelines, answers with the same record as ``palmjax palm detect`` / ``palmjax face check``
and keeps every decision in a durable audit store.

* :mod:`palmjax.serve.keys` - per-terminal API keys (only hashes stored), roles;
* :mod:`palmjax.serve.store` - the audit store (SQLite WAL; PostgreSQL through the same
  interface);
* :mod:`palmjax.serve.engine` - the models, request decoding and one batch of inference;
* :mod:`palmjax.serve.batching` - the dynamic micro-batcher (a worker thread);
* :mod:`palmjax.serve.app` - the Starlette ASGI application.

Needs the ``serve`` extra (starlette, uvicorn): ``pip install 'palmjax[serve]'``.
"""
