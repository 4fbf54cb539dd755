"""Chain parameterized notebooks with papermill, cached step by step, in one run folder.

Run commands::

    python -m alkit run ab --profile quick --run-dir runs/ab          # notebook 10_ab_test
    python -m alkit run loop --run-dir runs/loop -p budget=50         # 01..05, paths wired
    python -m alkit run rounds --profile full --run-dir runs/rounds   # 30_active_learning_loop
    run_recipe("loop", "runs/loop", overrides={"02_query.seed": 1})   # the same, from Python

Each step executes ``notebooks/<step>.ipynb`` in a fresh kernel (``kernel_name``, by default
``python3``, which is this environment's Python) with the run folder as working directory. Its
cache key hashes the notebook file, its resolved parameters (run-folder paths as ``{run}/...``)
and its inputs: the output listing of every upstream step it reads and the content of every
existing path parameter outside the run folder. A step whose key, executed notebook and outputs
are unchanged is skipped; so a rerun skips finished steps and a changed parameter reruns only
the steps whose key it changes. A rerun with another key starts the step's ``out_dir`` afresh,
moving the outputs of the old key to ``superseded/<step>-<old key>/`` (never deleted: an edit
of a notebook must not cost a long step's work); ``rerun`` with the same key deletes them;
a rerun with the same key after a failure keeps them, so steps that resume (training, scoring,
the A/B test) pick up where they stopped.

The executed notebook is written as ``steps/<step>.running.ipynb`` and renamed to
``steps/<step>.ipynb`` when the step succeeds, then rendered to ``steps/<step>.html``. A failed
step keeps ``steps/<step>.failed.ipynb`` and raises ``StepFailed`` naming the cell, the
exception and that file; the run stops there and ``run.json`` records it. Rerunning the same
command after the fix resumes at that step. ``run.json`` ties every step to its notebook hash,
parameters, inputs, key, outputs (``{path: sha256}``), timings and the code and kernel it ran
with (see ``alkit.workflow.runfolder`` for the folder layout).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alkit import __version__
from alkit.config.profiles import profile_parameters
from alkit.errors import ConfigError
from alkit.workflow.recipes import (
    RUN_PREFIX,
    Step,
    check_overrides,
    recipe_steps,
    step_parameters,
)
from alkit.workflow.run_data import check_own_data
from alkit.workflow.runfolder import (
    StepFailed,
    cache_key,
    execute_step,
    external_inputs,
    file_sha256,
    json_sha256,
    kernel_info,
    logical,
    notebook_parameters,
    read_run_record,
    tree_listing,
    write_run_record,
)

#: Where the notebooks live in a source checkout.
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FORMAT = 1
SUPERSEDED = "superseded"  # a step's outputs of an earlier key: superseded/<step>-<key12>/


@dataclass(frozen=True)
class StepResult:
    """What one step did in this invocation: ``status`` is ``"ran"`` or ``"cached"``."""

    name: str
    status: str
    notebook: Path
    html: Path
    out_dir: Path
    seconds: float


@dataclass(frozen=True)
class RunResult:
    """The run folder, its ``run.json`` and one ``StepResult`` per step, in order."""

    run_dir: Path
    record: Path
    steps: tuple[StepResult, ...]

    def step(self, name: str) -> StepResult:
        """The result of the named step."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step {name!r} in this run; steps: {[s.name for s in self.steps]}")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _is_fresh(record: dict | None, key: str, run_dir: Path) -> bool:
    """A finished record with this key whose executed notebook and outputs are unchanged."""
    if not record or record.get("status") != "done" or record.get("key") != key:
        return False
    if not (run_dir / record["executed"]).exists():
        return False
    return json_sha256(tree_listing(run_dir / record["out_dir"])) == record["outputs_sha256"]


def _supersede(out_dir: Path, run_dir: Path, name: str, old_key: str) -> Path:
    """Move a step's outputs of ``old_key`` to ``superseded/<step>-<key12>[-n]/``: a long
    step's finished work is never deleted by an edit of its notebook or a parameter."""
    base = run_dir / SUPERSEDED / f"{name}-{old_key[:12]}"
    kept, n = base, 1
    while kept.exists():
        kept, n = base.with_name(f"{base.name}-{n}"), n + 1
    kept.parent.mkdir(parents=True, exist_ok=True)
    out_dir.rename(kept)
    return kept


def _prepare(
    step: Step,
    declared: list[str],
    values: dict,
    overrides: Mapping[str, Any],
    records: dict,
    run_dir: Path,
    source: Path,
) -> tuple[dict, dict, str]:
    """``(parameters, inputs, key)`` of a step."""
    out = run_dir / "out"
    wired = {"out_dir": str(out / step.name)}
    wired |= {
        name: str(run_dir / ref.removeprefix(RUN_PREFIX)) if ref.startswith(RUN_PREFIX)
        else str(out / ref)
        for name, ref in step.inputs.items()
    }  # fmt: skip
    params = step_parameters(step, declared, values, overrides, wired)
    inputs: dict[str, Any] = {
        name: {
            "step": ref.split("/", 1)[0],
            "outputs_sha256": records[ref.split("/", 1)[0]]["outputs_sha256"],
        }
        for name, ref in step.step_inputs.items()
    }
    inputs |= external_inputs(params, run_dir, skip=set(wired))
    shown = {k: logical(v, run_dir) for k, v in params.items()}
    return params, inputs, cache_key(file_sha256(source), shown, inputs)


def run_recipe(
    recipe: str,
    run_dir: str | Path,
    profile: str = "quick",
    overrides: Mapping[str, Any] | None = None,
    notebooks_dir: str | Path | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    rerun: Sequence[str] = (),
    log: Callable[[str], None] = print,
    log_output: bool = False,
) -> RunResult:
    """Run (or resume) a recipe of ``alkit.workflow.recipes`` in ``run_dir``;
    see the module docstring.

    ``overrides``: ``{"budget": 5, "02_query.seed": 1}`` (``-p`` values). ``rerun``: steps
    to run afresh even when cached (``["all"]``: every step), e.g. after changing alkit's code,
    which cache keys do not cover. ``log_output``: stream the notebooks' output to stderr
    as they run (their own progress lines). Raises
    ``StepFailed`` when a notebook fails, ``ConfigError`` for an unknown recipe, profile or
    parameter, or a run folder that holds another recipe.
    """
    from alkit.data.lineage import code_version

    steps = recipe_steps(recipe)
    overrides = dict(overrides or {})
    values = profile_parameters(profile, bool(overrides.get("labelled")), recipe)
    run_dir = Path(run_dir).resolve()
    notebooks = Path(notebooks_dir or NOTEBOOKS).resolve()
    sources = {s.name: notebooks / f"{s.notebook}.ipynb" for s in steps}
    missing = [str(p) for p in sources.values() if not p.exists()]
    if missing:
        raise ConfigError(f"notebooks {missing} not found; pass notebooks_dir (--notebooks)")
    declared = {name: notebook_parameters(path) for name, path in sources.items()}
    forced = set(sources) if "all" in rerun else set(rerun)
    if forced - set(sources):
        raise ConfigError(f"rerun: no step {sorted(forced - set(sources))}; steps: {list(sources)}")
    check_overrides(overrides, declared, {"out_dir", *(k for s in steps for k in s.inputs)})
    check_own_data(values | overrides)
    run_record = read_run_record(run_dir) or {
        "format": FORMAT,
        "recipe": recipe,
        "created": _now(),
        "steps": {},
    }
    if run_record.get("recipe") != recipe:
        raise ConfigError(
            f"{run_dir} holds a run of recipe {run_record.get('recipe')!r}, not {recipe!r}; "
            "use another --run-dir"
        )
    import papermill

    run_record |= {
        "profile": profile,
        "overrides": overrides,
        "run_dir": str(run_dir),
        "status": "running",
        "updated": _now(),
        "lineage": {
            "code": code_version(),
            "alkit": __version__,
            "papermill": papermill.__version__,
            "kernel": kernel_info(kernel_name),
        },
    }
    records: dict[str, dict] = run_record["steps"]
    results = []
    for i, step in enumerate(steps, start=1):
        name, source = step.name, sources[step.name]
        params, inputs, key = _prepare(
            step, declared[name], values, overrides, records, run_dir, source
        )
        out_dir = run_dir / "out" / name
        old = records.get(name)
        if name not in forced and _is_fresh(old, key, run_dir):
            old["last"] = "cached"
            log(f"[{i}/{len(steps)}] {name}: cached (key {key[:12]})")
            results.append(
                StepResult(
                    name, "cached", run_dir / old["executed"], run_dir / old["html"], out_dir, 0.0
                )
            )
            continue
        old_key = (old or {}).get("key", "unknown")
        if out_dir.exists() and old_key != key:
            kept = _supersede(out_dir, run_dir, name, old_key)
            log(f"[{i}/{len(steps)}] {name}: its key changed; the outputs of key "
                f"{old_key[:12]} are kept in {kept} (delete when done)")  # fmt: skip
        elif out_dir.exists() and name in forced:
            shutil.rmtree(out_dir)  # asked to run afresh with the same key
        out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "notebook": str(source),
            "notebook_sha256": file_sha256(source),
            "parameters": {k: logical(v, run_dir) for k, v in params.items()},
            "inputs": inputs,
            "upstream": list(step.upstream),
            "key": key,
            "status": "running",
            "last": "ran",
            "started": _now(),
            "executed": f"steps/{name}.ipynb",
            "html": f"steps/{name}.html",
            "out_dir": f"out/{name}",
            "error": None,
        }
        records[name] = record
        write_run_record(run_dir, run_record)
        log(f"[{i}/{len(steps)}] {name}: running (key {key[:12]})")
        start = time.perf_counter()
        try:
            execute_step(name, source, params, run_dir, kernel_name, progress, log_output)
        except StepFailed as err:
            record |= {
                "status": "failed",
                "seconds": round(time.perf_counter() - start, 2),
                "error": {
                    "message": err.error,
                    "cell": err.cell,
                    "notebook": str(err.notebook) if err.notebook else None,
                },
            }
            run_record |= {"status": "failed", "updated": _now()}
            write_run_record(run_dir, run_record)
            raise
        outputs = tree_listing(out_dir)
        seconds = round(time.perf_counter() - start, 2)
        record |= {
            "status": "done",
            "finished": _now(),
            "seconds": seconds,
            "outputs": outputs,
            "outputs_sha256": json_sha256(outputs),
        }
        write_run_record(run_dir, run_record)
        log(f"[{i}/{len(steps)}] {name}: done in {seconds:.1f} s -> {run_dir / record['executed']}")
        results.append(
            StepResult(
                name,
                "ran",
                run_dir / record["executed"],
                run_dir / record["html"],
                out_dir,
                seconds,
            )
        )
    run_record |= {"status": "done", "updated": _now()}
    path = write_run_record(run_dir, run_record)
    return RunResult(run_dir, path, tuple(results))


__all__ = [
    "NOTEBOOKS",
    "RunResult",
    "StepFailed",
    "StepResult",
    "kernel_info",
    "notebook_parameters",
    "run_recipe",
]
