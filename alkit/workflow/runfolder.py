"""A pipeline run folder: its layout, content hashes, cache keys and the ``run.json`` record.

::

    runs/NAME/
        run.json                     the run record (see ``alkit.workflow.pipeline``)
        steps/NN_name.ipynb          executed notebook of each finished step
        steps/NN_name.html           its HTML report (nbconvert)
        steps/NN_name.failed.ipynb   a failed step's partially executed notebook
        out/NN_name/                 the step's outputs (its ``out_dir`` parameter)
        superseded/NN_name-KEY/      its outputs of an earlier key, moved aside, never deleted

``execute_step`` runs one notebook into ``steps/`` (temporary name, renamed on success) and
renders its HTML report. Paths inside the run folder enter cache keys as ``{run}/...``, so a
moved run folder keeps its cache; input files outside it enter by content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alkit.data import storage
from alkit.data.storage import file_sha256
from alkit.errors import AlkitError, ConfigError

RUN_RECORD = "run.json"
RUN = "{run}"
#: Parameters whose names end like this hold paths; existing ones are hashed by content.
PATH_SUFFIXES = ("_path", "_dir", "_root")
#: Own data's files, also hashed by content (a pool is keyed by its URL alone: hashing
#: millions of frames on every run would cost more than the run).
PATH_PARAMETERS = ("labelled", "labels", "test")


def json_sha256(value: Any) -> str:
    """sha256 of a value's canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def tree_listing(root: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (``{}`` if it is absent);
    temporary files of atomic writes (``*.tmp-*``) are left out."""
    root = Path(root)
    if not root.is_dir():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".tmp-" not in path.name:
            out[path.relative_to(root).as_posix()] = file_sha256(path)
    return out


def content_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's ``tree_listing``."""
    path = Path(path)
    return json_sha256(tree_listing(path)) if path.is_dir() else file_sha256(path)


def is_path_parameter(name: str) -> bool:
    """Whether a parameter's name says it holds a path."""
    return name.endswith(PATH_SUFFIXES) or name in PATH_PARAMETERS


def logical(value: Any, run_dir: Path) -> Any:
    """A parameter value with the run folder's absolute path replaced by ``{run}``."""
    root = str(run_dir)
    if isinstance(value, str) and (value == root or value.startswith(root + os.sep)):
        return RUN + value[len(root) :]
    return value


def external_inputs(params: Mapping[str, Any], run_dir: Path, skip: set[str]) -> dict[str, Any]:
    """Path parameters (not in ``skip``) naming existing files or folders outside the run
    folder: ``{name: {"path": ..., "sha256": content hash}}``."""
    out = {}
    for name, value in params.items():
        if name in skip or not is_path_parameter(name) or not isinstance(value, str) or not value:
            continue
        path = Path(value).resolve()
        if path.exists() and not path.is_relative_to(run_dir):
            out[name] = {"path": str(path), "sha256": content_sha256(path)}
    return out


def cache_key(notebook_sha256: str, params: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """The step's cache key: notebook content, its logical parameters, its inputs' hashes."""
    return json_sha256({"notebook": notebook_sha256, "params": params, "inputs": inputs})


def read_run_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``run.json``, or ``None`` for a new run folder."""
    path = run_dir / RUN_RECORD
    return storage.read_json(str(path)) if path.exists() else None


def write_run_record(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``run.json`` atomically."""
    path = run_dir / RUN_RECORD
    storage.atomic_write_json(str(path), record)
    return path


class StepFailed(AlkitError):
    """A step's notebook raised: ``error`` is ``"<exception>: <message>"``, ``cell`` the
    failing cell's index in ``notebook``, the partially executed copy (``None`` if the kernel
    never started), ``source`` the cell's first line."""

    def __init__(
        self,
        step: str,
        error: str,
        notebook: Path | None,
        cell: int | None = None,
        source: str = "",
    ) -> None:
        self.step, self.error, self.notebook, self.cell = step, error, notebook, cell
        self.source = source
        where = f" in cell {cell} ({source!r})" if cell is not None else ""
        kept = f"\n  partially executed notebook: {notebook}" if notebook else ""
        super().__init__(
            f"step {step} failed{where}: {error}{kept}\n  fix the cause and run again: "
            f"finished steps are reused and the run resumes at {step}"
        )


def notebook_parameters(path: Path) -> list[str]:
    """Names declared in a notebook's ``parameters`` cell (papermill's inference)."""
    import papermill

    return list(papermill.inspect_notebook(str(path)))


def kernel_info(kernel_name: str) -> dict[str, Any]:
    """Where a kernelspec lives and what it runs (``python`` means this interpreter)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise ConfigError(
            f"no Jupyter kernel {kernel_name!r}; install one into this environment with "
            f"`{sys.executable} -m ipykernel install --sys-prefix --name {kernel_name}`"
        ) from None
    program = spec.argv[0] if spec.argv else ""
    same = program in ("python", "python3") or Path(program).resolve() == Path(sys.executable)
    return {
        "name": kernel_name,
        "resource_dir": spec.resource_dir,
        "argv": spec.argv,
        "python": sys.executable if same else program,
    }


#: Cells with this tag open the HTML report, right after the notebook's title cell, without
#: their code (the executed notebook keeps its order).
FIRST_SCREEN_TAG = "first-screen"
_HIDE_INPUT = "alkit-report-hide-input"


def first_screen(nb: Any) -> Any:
    """``nb`` with its ``first-screen`` cells moved right after the first cell."""
    tagged = [c for c in nb.cells if FIRST_SCREEN_TAG in c.get("metadata", {}).get("tags", [])]
    for cell in tagged:
        if cell.cell_type == "code":
            cell.metadata.setdefault("tags", []).append(_HIDE_INPUT)
    if tagged:
        rest = [c for c in nb.cells if c not in tagged]
        nb.cells = rest[:1] + tagged + rest[1:]
    return nb


def _write_html(notebook: Path, html: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {_HIDE_INPUT}
    nb = first_screen(nbformat.read(str(notebook), as_version=4))
    body, _ = HTMLExporter(config=config).from_notebook_node(nb)
    storage.atomic_write_text(str(html), body)


def ipc_kernel_manager() -> type:
    """A Jupyter kernel manager whose kernels talk over local IPC sockets (files in a private
    temporary folder) instead of TCP ports: nothing listens on the network, and the kernel has
    no "running over TCP without encryption" warning to print."""
    import tempfile

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self) -> str:
            return str(Path(tempfile.mkdtemp(prefix="alkit-kernel-")) / "kernel")

    return IPCKernelManager


def execute_step(
    name: str,
    source: Path,
    params: dict,
    run_dir: Path,
    kernel_name: str,
    progress: bool,
    log_output: bool = False,
) -> None:
    """Execute one notebook into ``steps/``; on failure keep ``.failed.ipynb``, raise.

    ``log_output``: stream the cells' output (the steps' own progress lines) to stderr.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    steps = run_dir / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    final, html = steps / f"{name}.ipynb", steps / f"{name}.html"
    running, failed = steps / f"{name}.running.ipynb", steps / f"{name}.failed.ipynb"
    for stale in (final, html, running):
        stale.unlink(missing_ok=True)
    try:
        papermill.execute_notebook(
            str(source),
            str(running),
            parameters=params,
            kernel_name=kernel_name,
            progress_bar=progress,
            stdout_file=sys.stderr if log_output else None,
            stderr_file=sys.stderr if log_output else None,
            cwd=str(run_dir),
            kernel_manager_class=ipc_kernel_manager(),
        )
    except BaseException as err:
        kept = failed if running.exists() else None
        if kept:
            os.replace(running, failed)
        if not isinstance(err, Exception):
            raise
        if isinstance(err, PapermillExecutionError):
            first = (err.source or "").strip().splitlines()[:1]
            raise StepFailed(
                name, f"{err.ename}: {err.evalue}", kept, err.cell_index, first[0] if first else ""
            ) from None
        raise StepFailed(name, f"{type(err).__name__}: {err}", kept) from None
    failed.unlink(missing_ok=True)
    os.replace(running, final)
    _write_html(final, html)


__all__ = [
    "StepFailed",
    "execute_step",
    "kernel_info",
    "notebook_parameters",
    "RUN_RECORD",
    "cache_key",
    "content_sha256",
    "external_inputs",
    "file_sha256",
    "is_path_parameter",
    "json_sha256",
    "logical",
    "read_run_record",
    "tree_listing",
    "write_run_record",
]
