"""The few Label Studio API calls the backend makes, over plain HTTP (stdlib ``urllib``).

Authentication is Label Studio's API token (Account & Settings -> Access Token; the legacy
token, sent as ``Authorization: Token <token>``). The backend pushes a retrained model's
predictions (``POST /api/predictions``) and makes that model the project's current
``model_version`` (``PATCH /api/projects/<id>``), which Label Studio's "Uncertainty sampling"
and the data manager's "prediction score" column read.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from alkit.errors import AlkitError


class LabelStudioError(AlkitError):
    """A Label Studio API call failed: the request and the server's answer."""


class LabelStudioAPI:
    """``url``: Label Studio's address (``http://localhost:8080``); ``token``: an API token."""

    def __init__(self, url: str, token: str, timeout: float = 60) -> None:
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _open(self, method: str, path: str, body: Any = None, query: dict | None = None):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            return self.opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")[:2000]
            raise LabelStudioError(f"{method} {path} -> HTTP {err.code}: {text}") from None
        except OSError as err:
            raise LabelStudioError(f"{method} {url}: {err}") from None

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """``method path`` with a JSON ``body``; the decoded JSON answer."""
        with self._open(method, path, body, query) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def read(self, path: str) -> bytes:
        """The bytes at ``path`` (a ``/data/...`` image URL of a task)."""
        with self._open("GET", path if path.startswith("/") else "/" + path) as resp:
            return resp.read()

    def tasks(self, project: int) -> list[dict]:
        """Every task of the project (``id``, ``data``)."""
        out, page = [], 1
        while True:
            answer = self.request(
                "GET", "/api/tasks/", query={"project": project, "page": page, "page_size": 100}
            )
            batch = answer.get("tasks", []) if isinstance(answer, dict) else answer
            out += batch
            total = answer.get("total", len(out)) if isinstance(answer, dict) else len(out)
            if len(out) >= total or not batch:
                return out
            page += 1

    def add_prediction(self, task: int, prediction: dict) -> dict:
        """``POST /api/predictions``: ``result``, ``score``, ``model_version`` of a task."""
        body = {"task": task, **{k: prediction[k] for k in ("result", "score", "model_version")}}
        return self.request("POST", "/api/predictions/", body)

    def mark_task(self, task: int, data: dict, meta: dict) -> dict:
        """``PATCH /api/tasks/<id>``: the task's ``data`` (all of it: Label Studio replaces the
        object) and ``meta``, e.g. label QA's flags (``data`` fields are data manager columns,
        filterable; ``meta`` is kept as is)."""
        return self.request("PATCH", f"/api/tasks/{task}/", {"data": data, "meta": meta})

    def set_model_version(self, project: int, model_version: str) -> dict:
        """Make ``model_version`` the project's current one (what uncertainty sampling reads)."""
        return self.request("PATCH", f"/api/projects/{project}/", {"model_version": model_version})


__all__ = ["LabelStudioAPI", "LabelStudioError"]
