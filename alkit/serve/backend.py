"""The model-facing backend: ``setup``, ``predict``, ``webhook`` over a loop run folder.

:class:`Backend` knows nothing of HTTP (``alkit.serve.app`` is the thin layer). It serves
the newest round's ensemble; each submitted annotation is validated and appended as a new
version (``alkit.serve.labels``) and checked by label QA in the background; after
``retrain_every`` new labels (or a ``START_TRAINING`` webhook) the loop's TRAIN and QUERY run
in a child process (``alkit.serve.retrain``), one at a time, while ``predict`` keeps answering
with the current model. A finished round becomes the served model under a new
``model_version``; with a Label Studio client its predictions are pushed to every task of the
project and it becomes the project's ``model_version``, so the queue re-orders.

Parameters (``-p key=value``): ``retrain_every`` (10), ``min_score`` (0.3, pre-annotations),
``project`` (the Label Studio project id to bind to; default: the first one that calls
``/setup``), ``qa`` (true: QA each annotation), ``seconds_per_frame`` / ``seconds_per_box``
(the cost of a frame without a measured time), and any parameter of the run's TRAIN or QUERY
steps (e.g. ``-p train={"max_epochs":2}``) for the retrainings.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alkit.annotate.labelstudio import config_labels
from alkit.data import storage
from alkit.data.labels import CostModel
from alkit.data.versions import load_version
from alkit.errors import ConfigError
from alkit.serve.frames import RequestError, ServedFrames
from alkit.serve.labels import add_labels, annotation_batch
from alkit.serve.labelstudio_api import LabelStudioAPI, LabelStudioError
from alkit.serve.model import ServedModel
from alkit.serve.retrain import DONE, Retrainer, write_job
from alkit.serve.state import ServeState, chain_since, newest_descendant, round_dir
from alkit.workflow.loop_run import has_scores, open_loop_run
from alkit.workflow.steps import QUERY_PARAMETERS, TRAIN_PARAMETERS, query_step

log = logging.getLogger("alkit.serve")

#: the backend's own parameters and their defaults
SERVE_PARAMETERS: dict[str, Any] = {
    "retrain_every": 10,
    "min_score": 0.3,
    "project": None,
    "qa": True,
    "seconds_per_frame": 30.0,
    "seconds_per_box": 7.0,
}
LABEL_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


def _project_id(value: Any, field: str) -> int | None:
    """A project id from ``"12"``, ``12``, ``"12.1712345678"`` (``/setup``'s) or
    ``{"id": 12}`` (a webhook's); ``None`` when absent."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None:
        return None
    try:
        return int(str(value).split(".", 1)[0])
    except ValueError:
        raise RequestError(f"field {field!r} is no project id: {value!r}", None, field) from None


class Backend:
    """See the module docstring. ``params``: ``-p`` values; ``label_studio``: a client to
    push predictions with (``None``: predictions are only served)."""

    def __init__(
        self,
        run_dir: str | Path,
        params: Mapping[str, Any] | None = None,
        label_studio: LabelStudioAPI | None = None,
    ) -> None:
        params = dict(params or {})
        steps = set(TRAIN_PARAMETERS) | set(QUERY_PARAMETERS)
        unknown = sorted(set(params) - set(SERVE_PARAMETERS) - steps)
        if unknown:
            raise ConfigError(
                f"serve: unknown parameter(s) {unknown}; parameters: "
                f"{sorted(SERVE_PARAMETERS)} and the run's TRAIN / QUERY parameters"
            )
        self.params = SERVE_PARAMETERS | {k: v for k, v in params.items() if k in SERVE_PARAMETERS}
        if not isinstance(self.params["retrain_every"], int) or self.params["retrain_every"] < 1:
            raise ConfigError(
                f"retrain_every must be an int >= 1, got {self.params['retrain_every']!r}"
            )
        self.overrides = {k: v for k, v in params.items() if k not in SERVE_PARAMETERS}
        self.run = open_loop_run(run_dir)
        self.folder = self.run.run_dir / "serve"
        self.root = str(self.folder / "versions")
        self.ls = label_studio
        self.lock = threading.RLock()
        self.cost = CostModel(self.params["seconds_per_frame"], self.params["seconds_per_box"])
        data = self.run.data
        world = data.sim.config if not data.own else None
        size = data.input_size or (world.image_height, world.image_width)
        fetch = label_studio.read if label_studio is not None else None
        self.frames = ServedFrames(self.run.pool(data), data.world, data.classes, size, fetch)
        self.classes = tuple(data.classes)
        self.state = self._recover(data)
        self.head = load_version(self.root, self.state.head)
        self.model = self._load_round(self.state.round)
        self.retrainer = Retrainer(self.folder / "logs")
        self.qa_lock = threading.Lock()
        self.last_error: str | None = None

    # -- state ------------------------------------------------------------------------------

    def _recover(self, data: Any) -> ServeState:
        """``state.json``, brought up to what the folder holds (see ``alkit.serve.state``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = ServeState.load(self.folder)
        if state is None:
            base = self.run.labelled_version(data)
            base.save(self.root)
            state = ServeState(base=base.hash, head=base.hash, project=self.params["project"])
        state.head = newest_descendant(self.root, state.head)
        for folder in sorted((self.folder / "rounds").glob("[0-9][0-9][0-9]")):
            index = int(folder.name)
            if index > state.round and (folder / DONE).exists():
                state.round, state.rounds[folder.name] = (
                    index,
                    storage.read_json(str(folder / DONE)),
                )
        if self.params["project"] is not None:
            state.project = int(self.params["project"])
        state.save(self.folder)
        return state

    def _load_round(self, index: int) -> ServedModel:
        """The model of round ``index`` (0: the run's newest ensemble, its pool scored now
        when the run never scored it)."""
        coi, min_score = self.run.classes_of_interest, self.params["min_score"]
        if index > 0:
            done = self.state.rounds[f"{index:03d}"]
            return ServedModel(done["ensemble"], done["scores"], coi, index, done["trained_on"],
                               min_score, self.run.score_precision)  # fmt: skip
        scores = self.run.scores_url
        if not has_scores(scores):
            out = round_dir(self.folder, 0) / "query"
            log.warning("scoring the pool with the run's newest ensemble (once) ...")
            query_step(
                out,
                str(self.run.data_path),
                str(self.run.ensemble_path),
                [],
                self.run.query_profile,
                **self.run.query_values,
            )
            scores = str(out / "scores" / "AL")
        return ServedModel(self.run.ensemble_path, scores, coi, 0, self.state.base, min_score,
                           self.run.score_precision)  # fmt: skip

    @property
    def labels_since_training(self) -> int:
        """Versions appended since the served model's training version."""
        return len(chain_since(self.root, self.head.hash, self.model.trained_on))

    # -- the protocol ---------------------------------------------------------------------

    def health(self) -> dict:
        """``GET /health``."""
        return {
            "status": "UP",
            "model_version": self.model.version,
            "round": self.model.round,
            "version": self.head.hash,
            "labels_since_training": self.labels_since_training,
            "training": self.retrainer.running,
            "project": self.state.project,
            "last_error": self.last_error,
        }

    def setup(self, body: Any) -> dict:
        """``POST /setup``: checks the project and that its labelling config's
        ``RectangleLabels`` are the run's classes; ``{"model_version": ...}``."""
        if not isinstance(body, Mapping):
            raise RequestError("setup: the body must be a JSON object", None, "body", 400)
        self._check_project(_project_id(body.get("project"), "project"), bind=True)
        schema = body.get("schema")
        if schema is not None:
            if not isinstance(schema, str):
                raise RequestError(
                    "setup: field 'schema' must be the labelling config (XML)", None, "schema", 400
                )
            try:
                tools = config_labels(schema)
            except Exception as err:  # noqa: BLE001 - any parse failure is the schema's
                raise RequestError(f"setup: field 'schema': {err}", None, "schema") from None
            self._check_labels(tools)
        return {"model_version": self.model.version}

    def _check_labels(self, tools: Mapping[str, list[str]]) -> None:
        if not tools:
            raise RequestError("setup: field 'schema' has no RectangleLabels tool", None, "schema")
        for name, labels in tools.items():
            extra = [c for c in labels if c not in self.classes]
            missing = [c for c in self.classes if c not in labels]
            if extra or missing:
                raise RequestError(
                    f"setup: field 'schema': RectangleLabels {name!r} has labels {labels}, the "
                    f"run's classes are {list(self.classes)} (unknown: {extra}, missing: "
                    f"{missing}); use alkit's labeling_config.xml",
                    None,
                    "schema",
                )

    def _check_project(self, project: int | None, bind: bool = False) -> None:
        with self.lock:
            if project is None:
                return
            if self.state.project is None and bind:
                self.state.project = project
                self.state.save(self.folder)
                return
            if self.state.project is not None and project != self.state.project:
                raise RequestError(
                    f"project {project}: this backend serves project {self.state.project} "
                    "(start another backend, on its own run folder, for another project)",
                    None,
                    "project",
                    409,
                )

    def predict(self, body: Any) -> dict:
        """``POST /predict``: ``{"results": [one prediction per task], "model_version"}``."""
        if not isinstance(body, Mapping) or not isinstance(body.get("tasks"), list):
            raise RequestError('predict: the body must be {"tasks": [...]}', None, "tasks", 400)
        self._check_project(_project_id(body.get("project"), "project"))
        tasks = body["tasks"]
        for i, task in enumerate(tasks):
            if not isinstance(task, Mapping):
                raise RequestError(
                    f"predict: tasks[{i}] is not a JSON object", None, f"tasks[{i}]", 400
                )
        images = [self.frames.image(t) for t in tasks]
        model = self.model  # the current one, whatever a retraining swaps in meanwhile
        predictions = model.predict(images)
        results = [
            p.to_labelstudio(image, model.classes, model.version)
            for p, image in zip(predictions, images, strict=True)
        ]
        return {"results": results, "model_version": model.version}

    def webhook(self, body: Any) -> dict:
        """``POST /webhook``: annotations appended, ``START_TRAINING`` retrains; other
        actions are acknowledged and ignored."""
        if not isinstance(body, Mapping) or not isinstance(body.get("action"), str):
            raise RequestError(
                "webhook: the body must be a JSON object with 'action'", None, "action", 400
            )
        action = body["action"]
        if action == "START_TRAINING":
            self._check_project(_project_id(body.get("project"), "project"))
            status = self.retrain(force=True)
            log.warning(f"START_TRAINING: {status}")
            return {"status": status}
        if action not in LABEL_ACTIONS:
            return {"status": "ignored", "action": action}
        project = _project_id(body.get("project"), "project")
        task = body.get("task")
        if project is None and isinstance(task, Mapping):
            project = _project_id(task.get("project"), "task.project")
        self._check_project(project)
        batch = annotation_batch(self.frames, task, body.get("annotation"), self.cost)
        if batch is None:
            return {"status": "skipped", "reason": "the annotation was cancelled"}
        annotation = body["annotation"]
        params = {
            "source": "alkit serve",
            "action": action,
            "project": project,
            "task": task.get("id"),
            "annotation": annotation.get("id"),
            "model_version": self.model.version,
        }
        with self.lock:
            parent = self.head
            self.head = add_labels(self.root, parent, batch, params)
            self.state.head = self.head.hash
            self.state.save(self.folder)
        appended = self.head.hash != parent.hash
        if appended:
            log.warning(
                f"task {task.get('id')}: frame {batch.frame_ids[0]} labelled "
                f"({batch.num_boxes} boxes) -> version {self.head.hash[:12]}"
            )
            if self.params["qa"]:
                args = (batch, self.head.hash, task)
                threading.Thread(target=self._qa, args=args, daemon=True).start()
        status = self.retrain() if appended else "unchanged"
        return {
            "status": "appended" if appended else "unchanged",
            "version": self.head.hash,
            "labels_since_training": self.labels_since_training,
            "training": status,
        }

    # -- retraining -------------------------------------------------------------------------

    def retrain(self, force: bool = False) -> str:
        """Start a round when ``retrain_every`` labels are new (any, with ``force``):
        ``"started"``, ``"running"`` (one is; the next starts when it ends), ``"waiting"``
        (too few labels) or ``"nothing new"``."""
        with self.lock:
            if self.retrainer.running:
                return "running"
            new = self.labels_since_training
            if new == 0:
                return "nothing new"
            if new < self.params["retrain_every"] and not force:
                return "waiting"
            index = self.model.round + 1
            folder = round_dir(self.folder, index)
            if folder.exists() and not (folder / DONE).exists():
                shutil.rmtree(folder)  # an unfinished round, perhaps of an older version
            version = {"root": self.root, "hash": self.head.hash, "data": str(self.run.data_path)}
            train = {k: v for k, v in self.overrides.items() if k in TRAIN_PARAMETERS}
            query = {k: v for k, v in self.overrides.items() if k in QUERY_PARAMETERS}
            write_job(
                folder,
                version,
                {
                    "train_profile": self.run.train_profile,
                    "train_values": self.run.train_values | train,
                    "query_profile": self.run.query_profile,
                    "query_values": self.run.query_values | query,
                },
            )
            self.retrainer.start(folder, self._round_done)
            log.warning(
                f"retraining round {index} on version {self.head.hash[:12]} ({new} new labels) ..."
            )
            return "started"

    def _round_done(self, folder: Path, code: int) -> None:
        """A round's process ended: serve its model, push its predictions, maybe go on."""
        if code != 0 or not (folder / DONE).exists():
            self.last_error = (
                f"round {folder.name} failed (exit status {code}); see "
                f"{self.retrainer.log_dir / f'round-{folder.name}.log'}"
            )
            log.error(self.last_error)
            return
        done = storage.read_json(str(folder / DONE))
        model = ServedModel(
            done["ensemble"],
            done["scores"],
            self.run.classes_of_interest,
            int(folder.name),
            done["trained_on"],
            self.params["min_score"],
            self.run.score_precision,
        )
        with self.lock:
            self.state.rounds[folder.name] = done
            self.state.round = model.round
            self.model = model
            self.state.save(self.folder)
        log.warning(f"round {model.round} trained: serving {model.version}")
        self.push_predictions()
        self.retrain()

    def push_predictions(self) -> int:
        """The served model's predictions to every task of the bound project, and its
        ``model_version`` made the project's; the tasks pushed (0 without a client)."""
        if self.ls is None or self.state.project is None:
            return 0
        model, project = self.model, self.state.project
        try:
            tasks = self.ls.tasks(project)
            for start in range(0, len(tasks), 32):
                chunk = tasks[start : start + 32]
                try:
                    images = [self.frames.image(t) for t in chunk]
                except RequestError as err:
                    log.error(f"pushing predictions: {err}")
                    continue
                for task, image, p in zip(chunk, images, model.predict(images), strict=True):
                    self.ls.add_prediction(
                        task["id"], p.to_labelstudio(image, model.classes, model.version)
                    )
            self.ls.set_model_version(project, model.version)
        except LabelStudioError as err:
            self.last_error = f"pushing predictions of {model.version}: {err}"
            log.error(self.last_error)
            return 0
        log.warning(f"pushed {len(tasks)} predictions of {model.version} to project {project}")
        return len(tasks)

    # -- label QA -------------------------------------------------------------------------

    def _qa(self, batch: Any, version: str, task: Mapping[str, Any] | None = None) -> None:
        """QA of a just-appended annotation against the served model (which has not trained
        on it): ``<serve>/qa/qa-<version>.csv``; with a Label Studio client, the flags go back
        to the task (``meta.alkit_qa``, and ``data.alkit_qa`` / ``data.alkit_qa_flags`` as
        data manager columns to filter the frames for review)."""
        from alkit.serve.label_qa import flag_text, qa_batch, task_flags

        try:
            with self.qa_lock:
                table = qa_batch(
                    batch,
                    self.model.ensemble,
                    self.frames.source,
                    self.folder / "qa" / f"qa-{version[:12]}.csv",
                    self.frames.own,
                    held_out=True,
                )
            if self.ls is None or not isinstance(task, Mapping) or task.get("id") is None:
                return
            flags = task_flags(table, version) | {"model_version": self.model.version}
            data = dict(task.get("data") or {})
            data |= {"alkit_qa": flag_text(flags), "alkit_qa_flags": sum(flags["flags"].values())}
            meta = dict(task.get("meta") or {}) | {"alkit_qa": flags}
            self.ls.mark_task(int(task["id"]), data, meta)
            log.warning(f"task {task['id']}: label QA {data['alkit_qa']}")
        except Exception as err:  # noqa: BLE001 - QA must never stop the server
            log.error(f"label QA of version {version[:12]}: {err}")

    def close(self) -> None:
        """Stop a running retraining (it is redone on the next start)."""
        self.retrainer.stop()


__all__ = ["SERVE_PARAMETERS", "Backend"]
