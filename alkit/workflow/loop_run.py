"""A finished ``loop`` run folder, read back: its newest ensemble, data, pool scores, steps.

``python -m alkit run loop`` leaves (``alkit.workflow.recipes``)::

    run.json                               every step's parameters (run paths as {run}/...)
    out/01_train_ensemble/                 data.json, ensemble.json: round 1's ensemble
    out/02_query/scores/AL/                the pool scored by it; selections/AL.json
    out/03_annotate/, out/04_append/       the labelled batch, the appended version
    out/round2_01_train_ensemble/          round 2's ensemble, trained on that version

:func:`open_loop_run` finds the newest finished ensemble (round 2's when the run got that far)
and the scores of the pool made with it (``None`` when only an older ensemble scored it), and
the parameters its TRAIN and QUERY steps ran with, so a later round (the labelling-tool
backend, ``alkit.serve``) trains and queries exactly as the run did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alkit.data import storage
from alkit.data.pool import Pool
from alkit.data.versions import DatasetVersion
from alkit.errors import ConfigError
from alkit.workflow.run_data import RunData
from alkit.workflow.runfolder import RUN, RUN_RECORD, read_run_record

TRAIN_STEPS = ("round2_01_train_ensemble", "01_train_ensemble")  # newest first
QUERY_STEP = "02_query"
#: the steps' own paths and their profile argument: not parameters of a later round
WIRED = ("out_dir", "version_path", "data_path", "ensemble_path", "baselines", "profile")


@dataclass(frozen=True)
class LoopRun:
    """What a later round needs of a loop run (see the module docstring).

    Attributes:
        run_dir: the run folder.
        data_path: ``data.json`` of the newest finished TRAIN step.
        ensemble_path: its ``ensemble.json``.
        scores_url: the pool's score shards made with that ensemble, or ``None``.
        train_profile, train_values: the TRAIN step's profile argument and parameters.
        query_profile, query_values: the QUERY step's.
    """

    run_dir: Path
    data_path: Path
    ensemble_path: Path
    scores_url: str | None
    train_profile: str = "quick"
    train_values: dict = field(default_factory=dict)
    query_profile: str = "quick"
    query_values: dict = field(default_factory=dict)

    @property
    def data(self) -> RunData:
        """The run's data (the world, or own data) as the newest TRAIN step wrote it."""
        return RunData.load(str(self.data_path))

    def pool(self, data: RunData | None = None) -> Pool:
        """The unlabelled pool QUERY scored (``pool`` / ``fps`` of the QUERY step)."""
        data = data or self.data
        return data.pool(self.query_values.get("pool", ""), self.query_values.get("fps"))

    def labelled_version(self, data: RunData | None = None) -> DatasetVersion:
        """The labelled version the newest ensemble trained on."""
        data = data or self.data
        return data.labelled_version(self.train_values.get("initial_stride", 2))

    @property
    def classes_of_interest(self) -> tuple[str, ...]:
        return tuple(self.query_values.get("classes_of_interest", ("person", "bicycle")))

    @property
    def score_precision(self) -> str | None:
        """The precision QUERY was asked to score in (its values, else its profile's; ``None``:
        the members' training precision, ``query.pool_query.scoring_precision``)."""
        from alkit.config.profiles import profile_parameters

        values = profile_parameters(self.query_profile) | self.query_values
        return values.get("score_precision")


def _real(value: Any, run_dir: Path) -> Any:
    """A recorded parameter with ``{run}`` replaced by the run folder."""
    if isinstance(value, str) and value.startswith(RUN):
        return str(run_dir) + value[len(RUN) :]
    return value


def _values(record: Mapping) -> tuple[str, dict]:
    params = dict(record.get("parameters") or {})
    profile = str(params.get("profile", "quick"))
    return profile, {k: v for k, v in params.items() if k not in WIRED}


def open_loop_run(run_dir: str | Path) -> LoopRun:
    """The run folder of a ``loop`` run (``ConfigError`` naming what is missing)."""
    run_dir = Path(run_dir).resolve()
    record = read_run_record(run_dir)
    if record is None:
        raise ConfigError(
            f"{run_dir} holds no {RUN_RECORD}: make the run folder first with "
            f"`python -m alkit run loop --run-dir {run_dir}`"
        )
    if record.get("recipe") != "loop":
        raise ConfigError(
            f"{run_dir} holds a run of recipe {record.get('recipe')!r}; the backend needs a "
            "run of recipe 'loop' (python -m alkit run loop)"
        )
    steps = record.get("steps") or {}
    done = [s for s in TRAIN_STEPS if (steps.get(s) or {}).get("status") == "done"]
    if not done:
        raise ConfigError(
            f"{run_dir}: step 01_train_ensemble has not finished; run `python -m alkit run "
            f"loop --run-dir {run_dir}` until it has"
        )
    train = steps[done[0]]
    out = run_dir / train["out_dir"]
    data_path, ensemble_path = out / "data.json", out / "ensemble.json"
    for path in (data_path, ensemble_path):
        if not path.exists():
            raise ConfigError(f"{run_dir}: step {done[0]} finished but {path} is missing")
    query = steps.get(QUERY_STEP) or {}
    if not query:
        raise ConfigError(f"{run_dir}: step {QUERY_STEP} never ran; the pool is not known")
    query_profile, query_values = _values(query)
    scores_url = None
    scored_with = _real((query.get("parameters") or {}).get("ensemble_path", ""), run_dir)
    scores = run_dir / query["out_dir"] / "scores" / "AL"
    if query.get("status") == "done" and Path(scored_with) == ensemble_path and scores.exists():
        scores_url = str(scores)
    train_profile, train_values = _values(steps["01_train_ensemble"])
    return LoopRun(
        run_dir,
        data_path,
        ensemble_path,
        scores_url,
        train_profile,
        {k: _real(v, run_dir) for k, v in train_values.items()},
        query_profile,
        {k: _real(v, run_dir) for k, v in query_values.items()},
    )


def has_scores(url: str | None) -> bool:
    """Whether ``url`` holds finished score shards."""
    return bool(url) and any(n.startswith("shard-") for n in storage.list_names(url))


__all__ = ["LoopRun", "has_scores", "open_loop_run"]
