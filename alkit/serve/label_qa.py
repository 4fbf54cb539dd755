"""Label QA of returned labels against a run's ensemble: a table and its lineage record.

``python -m alkit qa --run-dir DIR --labels EXPORT.json [--out qa.csv]`` (Label Studio JSON or
COCO) and the backend (each appended annotation) call :func:`qa_batch`: the ensemble's fused
predictions of each frame (mean heatmap peaks, in the original image's px) scored against its
labels by ``alkit.annotate.qa``. Written next to the table: ``<table>.json``, the lineage
(the labels file and its sha256, the ensemble's checkpoints, the version it trained on, code,
time, thresholds) and the flags per kind.

In this project every member trains on every labelled frame, so no member is held out from
a frame it trained on: frames of the version the ensemble trained on are marked
``held_out = False`` (their predictions partly repeat the labels; read their flags as a
lower bound), new frames (a round's labels, what the backend checks) ``True``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alkit.annotate.detections import in_original
from alkit.annotate.parsers import parse_coco_labels, parse_labelstudio
from alkit.annotate.qa import KINDS, LabelledBoxes, QAConfig, box_scores
from alkit.annotate.validate import labels_from_import
from alkit.data import storage
from alkit.data.datasets import VirtualFrames
from alkit.data.labels import LabelledBatch
from alkit.data.lineage import lineage_info
from alkit.ensemble.store import Ensemble, load_ensemble
from alkit.errors import DataError
from alkit.evaluate.predict import predict_detections
from alkit.serve.frames import RequestError, ServedFrames
from alkit.workflow.loop_run import open_loop_run


def qa_batch(
    batch: LabelledBatch,
    ensemble: Ensemble,
    source: Any,
    out: str | Path | None = None,
    own: bool = False,
    held_out: bool | Mapping[int, bool] = True,
    config: QAConfig | None = None,
) -> pd.DataFrame:
    """The QA table (``alkit.annotate.qa.COLUMNS``) of a labelled batch whose frames
    ``source`` renders (``own``: a pool of own images, letterboxed; boxes go back to the
    original px); written to ``out`` (``.csv`` or ``.parquet``) atomically when given."""
    ids = batch.frame_ids
    dets = predict_detections(ensemble, VirtualFrames(source, ids), batch_size=16)
    if own:
        dets = {fid: in_original(d, source.letterbox(fid)) for fid, d in dets.items()}
    frames = [LabelledBoxes(f.frame_id, f.boxes, f.labels) for f in batch.frames]
    held = held_out if isinstance(held_out, Mapping) else dict.fromkeys(ids, bool(held_out))
    table = box_scores(frames, dets, batch.classes, config, held)
    if out is not None:
        write_table(table, str(out))
    return table


def flag_counts(table: pd.DataFrame) -> dict[str, int]:
    """The flagged boxes of a QA table per kind (``KINDS``)."""
    flagged = table[table.flagged]
    return {k: int((flagged.kind == k).sum()) for k in KINDS}


def task_flags(table: pd.DataFrame, version: str, max_boxes: int = 10) -> dict:
    """A frame's QA table as a Label Studio task's ``meta.alkit_qa``: the flags per kind, the
    frame's flag and its worst ``max_boxes`` flagged boxes (px of the original image)."""
    flagged = table[table.flagged].sort_values(["score", "box"])
    boxes = [
        {
            "kind": r.kind,
            "category": r.category,
            "box": [round(float(v), 1) for v in (r.x, r.y, r.w, r.h)],
            "score": round(float(r.score), 4),
        }
        for r in flagged.head(max_boxes).itertuples()
    ]
    return {
        "version": version,
        "flags": flag_counts(table),
        "frame_flagged": bool(table.image_flagged.any()),
        "boxes": boxes,
    }


def flag_text(flags: Mapping[str, Any]) -> str:
    """``task_flags`` in a line for a data manager column: ``"2 flags: overlooked person
    0.04; swap bicycle 0.10"``, or ``"ok"``."""
    n = sum(flags["flags"].values())
    if not n and not flags["frame_flagged"]:
        return "ok"
    worst = "; ".join(f"{b['kind']} {b['category']} {b['score']:.2f}" for b in flags["boxes"][:3])
    frame = " (frame flagged)" if flags["frame_flagged"] else ""
    return f"{n} flag{'s' * (n != 1)}{frame}" + (f": {worst}" if worst else "")


def write_table(table: pd.DataFrame, url: str) -> None:
    """A table as CSV or Parquet (by the name's ending), atomically."""
    if url.endswith(".parquet"):
        storage.atomic_write_parquet(table, url)
    else:
        storage.atomic_write_text(url, table.to_csv(index=False))


def _frame_ids(obj: Any, frames: ServedFrames, url: str) -> list[int]:
    """The frames a labels file is about (Label Studio tasks or COCO images)."""
    ids = []
    if isinstance(obj, list):
        for i, task in enumerate(obj):
            if not isinstance(task, Mapping):
                raise DataError(f"{url}: tasks[{i}] is not a JSON object")
            try:
                fid = frames.frame_of(task)
            except RequestError as err:
                raise DataError(f"{url}: tasks[{i}]: {err}") from None
            if fid is None:
                raise DataError(
                    f"{url}: tasks[{i}] (task id {task.get('id')}): field "
                    "'data.frame_id' is missing and 'data.image' is no pool image"
                )
            ids.append(fid)
    elif isinstance(obj, Mapping) and isinstance(obj.get("images"), list):
        ids = [int(i.get("id")) for i in obj["images"] if isinstance(i, Mapping)]
    else:
        raise DataError(
            f"{url}: neither a Label Studio JSON export (a list of tasks) nor COCO "
            "instances (an object with 'images')"
        )
    return list(dict.fromkeys(ids))


def read_labels(url: str, frames: ServedFrames) -> LabelledBatch:
    """A Label Studio JSON export or COCO file about pool frames, validated as ``-p labels=``
    (every frame it names must be labelled)."""
    try:
        obj = storage.read_json(url)
    except FileNotFoundError:
        raise DataError(f"labels file not found: {url}") from None
    ids = _frame_ids(obj, frames, url)
    outside = [i for i in ids if i not in frames.ids]
    if outside:
        raise DataError(
            f"{url}: frame(s) {outside[:5]} (field 'id') are not frames of the run's pool"
        )
    exported = frames.exported(ids)
    if isinstance(obj, list):
        source = f"labelstudio:{url}"
        tasks = [
            dict(t, data={**t["data"], "frame_id": fid}) for t, fid in zip(obj, ids, strict=True)
        ]
        imported = parse_labelstudio(tasks, exported, source)
    else:
        source = f"coco:{url}"
        imported = parse_coco_labels(obj, source)
    labelled = {f.frame_id for f in imported}
    exported = frames.exported([i for i in ids if i in labelled])
    return labels_from_import(exported, imported, source)


def qa_labels(
    run_dir: str | Path, labels: str, out: str | Path | None = None, config: QAConfig | None = None
) -> tuple[pd.DataFrame, Path]:
    """QA of the labels file ``labels`` against the newest ensemble of the loop run (a
    backend's newest round, else the run's own): the table (written to ``out``, default
    ``<run>/qa/qa.csv``) and the path of its lineage record."""
    run = open_loop_run(run_dir)
    data = run.data
    ensemble_path, trained = run.ensemble_path, run.labelled_version(data)
    state = run.run_dir / "serve" / "state.json"
    if state.exists():
        served = storage.read_json(str(state))
        if served.get("round", 0) > 0:
            done = served["rounds"][f"{served['round']:03d}"]
            ensemble_path = Path(done["ensemble"])
            trained_hash = done["trained_on"]
            from alkit.data.versions import load_version

            trained = load_version(str(run.run_dir / "serve" / "versions"), trained_hash)
    world = data.sim.config if not data.own else None
    size = data.input_size or (world.image_height, world.image_width)
    frames = ServedFrames(run.pool(data), data.world, data.classes, size)
    batch = read_labels(labels, frames)
    seen = set(trained.frame_ids)
    held = {fid: fid not in seen for fid in batch.frame_ids}
    config = config or QAConfig()
    out = Path(out) if out is not None else run.run_dir / "qa" / "qa.csv"
    ensemble = load_ensemble(ensemble_path)
    table = qa_batch(batch, ensemble, frames.source, out, frames.own, held, config)
    record = lineage_info(
        None,
        ensemble.checkpoint_hashes,
        {
            "labels": str(labels),
            "labels_sha256": storage.file_sha256(labels),
            "ensemble": str(ensemble_path),
            "trained_on": trained.hash,
            "config": asdict(config),
        },
    )
    record |= {
        "frames": len(batch),
        "boxes": batch.num_boxes,
        "held_out_frames": int(sum(held.values())),
        "flags": flag_counts(table),
        "flagged_frames": int(table[table.image_flagged].frame_id.nunique()),
        "table": str(out),
    }
    record_path = out.with_suffix(".json")
    storage.atomic_write_json(str(record_path), record)
    return table, record_path


def frame_images(run_dir: str | Path) -> Callable[[int], np.ndarray]:
    """``frame_id -> (H, W, 3)`` uint8 original image of the loop run's pool (what the QA
    table's px refer to): a widget's ``image_fn``."""
    run = open_loop_run(run_dir)
    source = run.pool().source
    if hasattr(source, "original"):
        return source.original
    return lambda fid: np.asarray(source.frame(int(fid)).image)


__all__ = [
    "flag_counts",
    "flag_text",
    "frame_images",
    "qa_batch",
    "qa_labels",
    "read_labels",
    "task_flags",
    "write_table",
]
