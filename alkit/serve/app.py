"""The HTTP routes of the Label Studio ML backend protocol, thin over :class:`Backend`.

``GET /health``, ``POST /setup``, ``POST /predict``, ``POST /webhook`` (and ``GET /``, the
same as ``/health``). A refused request is answered with its status (4xx) and
``{"error", "task", "field"}``; the server goes on serving. Run with :func:`serve`
(uvicorn), or drive :func:`make_app` with FastAPI's ``TestClient``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from alkit.errors import AlkitError
from alkit.serve.backend import Backend
from alkit.serve.frames import RequestError


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"the body is not JSON ({err})", None, "body", 400) from None


def make_app(backend: Backend) -> FastAPI:
    """The FastAPI app serving ``backend``."""
    app = FastAPI(title="alkit Label Studio ML backend", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    async def refused(request: Request, err: RequestError) -> JSONResponse:
        logging.getLogger("alkit.serve").warning(f"{request.url.path}: {err}")
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(AlkitError)
    async def failed(request: Request, err: AlkitError) -> JSONResponse:
        logging.getLogger("alkit.serve").warning(f"{request.url.path}: {err}")
        return JSONResponse({"error": str(err), "task": None, "field": ""}, status_code=422)

    @app.get("/")
    @app.get("/health")
    def health() -> dict:
        return backend.health()

    # inference runs in the thread pool: /health and webhooks answer during a /predict
    @app.post("/setup")
    async def setup(request: Request) -> dict:
        return await run_in_threadpool(backend.setup, await _body(request))

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        return await run_in_threadpool(backend.predict, await _body(request))

    @app.post("/webhook")
    async def webhook(request: Request) -> dict:
        return await run_in_threadpool(backend.webhook, await _body(request))

    return app


def serve(backend: Backend, host: str = "127.0.0.1", port: int = 9090) -> None:
    """Serve ``backend`` with uvicorn until interrupted (then stop a running retraining)."""
    import uvicorn

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("alkit serve: %(message)s"))
    logger = logging.getLogger("alkit.serve")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        uvicorn.run(make_app(backend), host=host, port=port, log_level="warning")
    finally:
        backend.close()


__all__ = ["make_app", "serve"]
