"""A real Label Studio server for tests, driven through its HTTP API.

Label Studio pins many packages, so it lives in a virtual environment of its own, never in
alkit's: ``$ALKIT_LABELSTUDIO_VENV`` if set, else ``~/.cache/alkit/labelstudio-<version>/``,
made from the base Python with ``python3 -m venv`` + ``pip install label-studio==<version>``
(about 3 min and 1 GB the first time). A marker file, written last, tells a finished install
from a killed one (which is redone). The install also migrates an empty database once, into
``<venv>/template-db/``: each server starts from a copy of it (about 7 s instead of 70 s).

The :func:`labelstudio` fixture (session scope) installs it when needed, starts a server on
127.0.0.1 (a free port, a throwaway data directory, a known user whose legacy API token the
client sends, local-files serving from :attr:`LabelStudioServer.document_root`) and yields a
:class:`LabelStudioClient`; it stops the server at the end. Only when the install itself is
impossible (no network, pip fails) is the test skipped, with pip's last error line. Everything
Label Studio and pip print goes to log files, shown only on failure (:meth:`LabelStudioServer.
log_tail`, :meth:`LabelStudioServer.show_log_on_failure`).

The fixture is registered in ``tests/conftest.py``: one server for the whole test session.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: The newest Label Studio that installs on Python 3.11 (checked with ``pip index versions``).
VERSION = "1.23.2"
MARKER = ".alkit-installed"
TEMPLATE_DB = "template-db"
DB_FILE = "label_studio.sqlite3"
USER_EMAIL = "alkit@example.com"
#: Label Studio's feature flag that makes the import validate predictions strictly.
STRICT_PREDICTIONS_FLAG = "fflag_feat_utc_210_prediction_validation_15082025"
#: How long a server may take to answer its health check (a fresh one migrates its database).
START_TIMEOUT_S = float(os.environ.get("ALKIT_LABELSTUDIO_START_TIMEOUT", "300"))


class LabelStudioInstallError(RuntimeError):
    """``label-studio`` could not be installed (the message is pip's last error line)."""


class LabelStudioError(RuntimeError):
    """A Label Studio API call failed; the message holds the request and the response."""


# ---------------------------------------------------------------------------------------------
# install


def venv_dir(version: str = VERSION) -> Path:
    """Where Label Studio's virtual environment is cached."""
    override = os.environ.get("ALKIT_LABELSTUDIO_VENV")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "alkit" / f"labelstudio-{version}"


def base_python() -> str:
    """The interpreter to make the venv from: the base Python under alkit's venv."""
    for name in ("python3", "python"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return str(candidate)
    return shutil.which("python3") or sys.executable


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["(no output)"])[-1]


def _run_logged(cmd: list[str], log: Path, env: dict | None = None, timeout: float = 1800) -> int:
    """Run ``cmd``, appending its output to ``log``; its exit status (124 on a timeout)."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            return subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n[timed out after {timeout:.0f} s]\n")
            return 124


def _server_env(data_dir: Path, document_root: Path, extra: dict | None = None) -> dict:
    """The environment of a Label Studio process: none of the caller's Label Studio or Django
    settings, no update check / analytics / Sentry, local-files serving, legacy tokens,
    strict validation of imported predictions."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABEL_STUDIO_", "HEARTEX_", "DJANGO_"))
        and k not in ("DATABASE_NAME", "LOG_LEVEL", "DEBUG", "PORT", "HOST")
    }
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_SENTRY_DSN="",
        LABEL_STUDIO_FRONTEND_SENTRY_DSN="",
        LABEL_STUDIO_DEBUG="false",
        LABEL_STUDIO_DJANGO_DB="sqlite",
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        # an ML backend (``alkit serve``) and its webhook on 127.0.0.1: Label Studio 1.23
        # refuses loopback addresses unless both are off
        LABEL_STUDIO_ML_BLOCK_LOCAL_IP="false",
        LABEL_STUDIO_SSRF_PROTECTION_ENABLED="false",
        LOG_LEVEL="WARNING",
    )
    # Refuse an import whose predictions do not fit the labelling config (HTTP 400 naming the
    # task and the error); without the flag, 1.23 only logs "Prediction validation failed".
    env[f"LABEL_STUDIO_{STRICT_PREDICTIONS_FLAG}"] = "true"
    env.update(extra or {})
    return env


def ensure_installed(version: str = VERSION) -> Path:
    """The ``label-studio`` executable of the cached venv, installing it first if needed.

    Raises :class:`LabelStudioInstallError` (pip's last error line) when the venv cannot be
    made or pip fails. A lock file beside the venv keeps concurrent sessions from installing
    twice; a venv without the marker (an interrupted install) is removed and redone.
    """
    venv = venv_dir(version)
    exe = venv / "bin" / "label-studio"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / MARKER).exists() and exe.exists():
            return exe
        if venv.exists():
            shutil.rmtree(venv)
        venv.mkdir(parents=True)
        log = venv / "install.log"
        start = time.monotonic()
        rc = _run_logged([base_python(), "-m", "venv", str(venv)], log, timeout=300)
        if rc == 0:
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install"]
            rc = _run_logged([*pip, "--disable-pip-version-check", f"label-studio=={version}"], log)
        if rc != 0 or not exe.exists():
            reason = _last_error_line(log.read_text(errors="replace"))
            raise LabelStudioInstallError(f"{reason} (exit status {rc}; log: {log})")
        install_s = time.monotonic() - start
        # An empty database, migrated once; servers start from a copy (a speed-up only: a
        # failure here leaves the servers to migrate their own).
        template = venv / TEMPLATE_DB
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir()
        env = _server_env(template, template)
        migrate = [
            str(exe),
            "user",
            "--username",
            "nobody@example.com",
            "--data-dir",
            str(template),
        ]
        start_db = time.monotonic()
        migrated = _run_logged(migrate, log, env, timeout=900) == 0
        if not migrated or not (template / DB_FILE).exists():
            shutil.rmtree(template, ignore_errors=True)
        record = {
            "version": version,
            "install_s": round(install_s, 1),
            "template_db_s": round(time.monotonic() - start_db, 1) if migrated else None,
        }
        (venv / MARKER).write_text(json.dumps(record) + "\n")
        return exe


# ---------------------------------------------------------------------------------------------
# server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudioServer:
    """A running ``label-studio start`` process (its own process group).

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        token: the legacy API token of the user ``USER_EMAIL`` (``Authorization: Token ...``).
        data_dir: the server's throwaway data directory (database, uploads, exports).
        document_root: files below it are served at ``/data/local-files/?d=<relative path>``.
        log: the server's stdout and stderr.
        start_s: seconds from launch until the health check answered.
    """

    def __init__(self, exe: Path, workdir: Path, timeout: float = START_TIMEOUT_S) -> None:
        self.data_dir = workdir / "data"
        self.document_root = workdir / "files"
        self.log = workdir / "labelstudio.log"
        self.data_dir.mkdir(parents=True)
        self.document_root.mkdir(parents=True)
        template = exe.parent.parent / TEMPLATE_DB / DB_FILE
        if template.exists():
            shutil.copyfile(template, self.data_dir / DB_FILE)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        password = secrets.token_urlsafe(16)
        cmd = [
            str(exe),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--username",
            USER_EMAIL,
            "--password",
            password,
            "--user-token",
            self.token,
            "--enable-legacy-api-token",
        ]
        env = _server_env(self.data_dir, self.document_root, {"LABEL_STUDIO_PORT": str(self.port)})
        start = time.monotonic()
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - start

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"label-studio exited with status {self.process.returncode} before it "
                    f"answered {self.url}/health/; its log ({self.log}) ends:\n{self.log_tail()}"
                )
            moved = re.search(r"Trying to start at (\d+)", self.log.read_text(errors="replace"))
            if moved:
                raise RuntimeError(
                    f"port {self.port} was taken; label-studio moved to {moved.group(1)}; "
                    f"its log ends:\n{self.log_tail()}"
                )
            try:
                with _opener.open(f"{self.url}/health/", timeout=5) as resp:
                    if json.loads(resp.read()).get("status") == "UP":
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"label-studio did not answer {self.url}/health/ within {timeout:.0f} s; "
                    f"its log ({self.log}) ends:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError as err:
            return f"(no log: {err})"
        return "\n".join(text.splitlines()[-lines:])

    @contextlib.contextmanager
    def show_log_on_failure(self, lines: int = 80) -> Iterator[None]:
        """Print the log's tail (captured by pytest, shown with the failure) if the block
        raises."""
        try:
            yield
        except BaseException:
            print(f"--- label-studio log ({self.log}), last {lines} lines ---")
            print(self.log_tail(lines))
            raise

    def stop(self, timeout: float = 20) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after ``timeout`` s)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


# ---------------------------------------------------------------------------------------------
# client

# no proxy for 127.0.0.1, whatever the environment says
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LabelStudioClient:
    """The few Label Studio API calls a labelling round needs (stdlib ``urllib``, JSON)."""

    def __init__(self, server: LabelStudioServer) -> None:
        self.server = server
        self.url, self.token = server.url, server.token

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        """``method`` ``path`` (``/api/...``) with a JSON ``body``; the decoded JSON answer.
        Raises :class:`LabelStudioError` with the status and the response's text."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _opener.open(req, timeout=120) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")[:4000]
            raise LabelStudioError(f"{method} {path} -> HTTP {err.code}: {text}") from None
        return json.loads(raw) if raw.strip() else None

    def create_project(self, title: str, label_config: str) -> int:
        """Create a project with the labelling interface ``label_config`` (XML); its id."""
        project = self.request(
            "POST", "/api/projects/", {"title": title, "label_config": label_config}
        )
        return int(project["id"])

    def connect_local_files(self, project_id: int, folder: Path | str) -> int:
        """Connect the folder (below the server's ``document_root``) to the project as Local
        Files source storage, WITHOUT syncing it (no tasks are made from its files); its id.

        Label Studio serves ``/data/local-files/?d=<path>`` only for files inside such a
        storage of a project the user may see (else HTTP 404), so tasks whose ``data.image``
        points there need one to show their images."""
        body = {"project": project_id, "path": str(folder), "title": "alkit images"}
        body |= {"use_blob_urls": False, "regex_filter": ""}
        return int(self.request("POST", "/api/storages/localfiles/", body)["id"])

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        """Import ``tasks`` (Label Studio's task format: ``data``, optional ``predictions`` =
        pre-annotations, as in alkit's ``tasks.json``) into the project, as the "Import"
        dialog does with a JSON file; the new tasks' ids, in the order of ``tasks``. The
        server's answer (``task_count``, ``prediction_count``, ...) is kept in
        ``self.last_import``."""
        answer = self.request(
            "POST", f"/api/projects/{project_id}/import", tasks, {"return_task_ids": "true"}
        )
        self.last_import = answer
        if answer.get("task_count") != len(tasks) or len(answer.get("task_ids", [])) != len(tasks):
            raise LabelStudioError(f"import of {len(tasks)} tasks answered {answer}")
        return [int(i) for i in answer["task_ids"]]

    def tasks(self, project_id: int) -> list[dict]:
        """The project's tasks (by id), each with ``data``, ``predictions`` (``result``,
        ``score``, ``model_version``) and ``annotations``, as the server holds them."""
        out, page = [], 1
        while True:
            answer = self.request(
                "GET",
                "/api/tasks/",
                query={"project": project_id, "page": page, "page_size": 100, "fields": "all"},
            )
            out += answer["tasks"]
            if len(out) >= answer["total"] or not answer["tasks"]:
                break
            page += 1
        full = [self.request("GET", f"/api/tasks/{t['id']}/") for t in out]
        for task in full:  # the task view leaves predictions out in some versions
            if "predictions" not in task or any(isinstance(p, int) for p in task["predictions"]):
                task["predictions"] = self.request(
                    "GET", "/api/predictions/", query={"task": task["id"]}
                )
        return sorted(full, key=lambda t: t["id"])

    def submit_annotation(
        self,
        task_id: int,
        result: list[dict],
        lead_time: float | None = None,
        parent_prediction: int | None = None,
    ) -> dict:
        """Submit an annotation of the task as a labeller does with "Submit": ``result`` is a
        list of regions in Label Studio's format (``rectanglelabels``: ``value.x/y/width/
        height`` in percent of the image, ``from_name``/``to_name`` of the labelling config,
        ``original_width``/``original_height`` in px); ``lead_time`` the labelling time (s);
        ``parent_prediction`` the prediction the labeller started from. The stored
        annotation."""
        body: dict = {"result": result, "was_cancelled": False, "ground_truth": False}
        if lead_time is not None:
            body["lead_time"] = lead_time
        if parent_prediction is not None:
            body["parent_prediction"] = parent_prediction
        return self.request("POST", f"/api/tasks/{task_id}/annotations/", body)

    def export(self, project_id: int, export_type: str = "JSON") -> Any:
        """The project's export in ``export_type`` ("JSON": the list of tasks with their
        ``annotations``, what a user downloads with Export -> JSON), all tasks included."""
        return self.request(
            "GET",
            f"/api/projects/{project_id}/export",
            query={"exportType": export_type, "download_all_tasks": "true"},
        )


# ---------------------------------------------------------------------------------------------
# fixture


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory) -> Iterator[LabelStudioClient]:
    """A client of a fresh Label Studio server (see the module docstring); skipped only when
    Label Studio cannot be installed."""
    try:
        exe = ensure_installed()
    except LabelStudioInstallError as err:
        if os.environ.get("CI") == "true":  # CI installs it: there its absence is a failure
            pytest.fail(f"CI=true and label-studio=={VERSION} cannot be installed: {err}")
        pytest.skip(f"cannot install label-studio=={VERSION}: {err}")
    server = LabelStudioServer(exe, tmp_path_factory.mktemp("labelstudio"))
    try:
        yield LabelStudioClient(server)
    finally:
        server.stop()
