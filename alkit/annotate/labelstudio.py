"""Label Studio's formats: the labelling config, tasks, regions and predictions.

Boxes are in PERCENT of the image in Label Studio (``value.x/y/width/height``), px in alkit.
A task's ``data.frame_id`` maps it back to its frame; ``data.uncertainty`` holds the frame's
acquisition score and its prediction's ``score`` what Label Studio sorts by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import numpy as np

from alkit.annotate.detections import KeptBox, frame_detections
from alkit.annotate.validate import ExportedBatch
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.detector.network import Detections
from alkit.errors import DataError

FROM_NAME, TO_NAME = "label", "image"
MODEL_VERSION = "alkit-ensemble-mean"


def labeling_config(classes: Sequence[str] = CLASSES) -> str:
    """Label Studio labelling config XML: one ``RectangleLabels`` tool over the image."""
    labels = "\n".join(f"    <Label value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f"{labels}\n"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def config_labels(config: str) -> dict[str, list[str]]:
    """``{from_name: [label values]}`` of every ``RectangleLabels`` tool of a labelling
    config; ``DataError`` for XML that does not parse."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as err:
        raise DataError(f"labelling config: not XML ({err})") from None
    out = {}
    for tool in root.iter():
        if re.fullmatch(r"rectanglelabels", tool.tag, re.IGNORECASE):
            out[tool.get("name", "")] = [
                label.get("value", "") for label in tool.iter() if label.tag.lower() == "label"
            ]
    return out


def labelstudio_result(
    xywh: Sequence[float],
    label: str,
    height: int,
    width: int,
    result_id: str,
    score: float | None = None,
) -> dict:
    """One Label Studio ``rectanglelabels`` region for a box ``[x, y, w, h]`` in px."""
    x, y, w, h = (float(v) for v in xywh)
    region = {
        "id": result_id,
        "type": "rectanglelabels",
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "original_width": int(width),
        "original_height": int(height),
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x / width,
            "y": 100.0 * y / height,
            "width": 100.0 * w / width,
            "height": 100.0 * h / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }
    if score is not None:
        region["score"] = float(score)
    return region


def labelstudio_prediction(
    kept: Sequence[KeptBox],
    classes: Sequence[str],
    size: tuple[int, int],
    prefix: str,
    model_version: str = MODEL_VERSION,
    score: float | None = None,
) -> dict:
    """A Label Studio prediction of an image of ``size`` (H, W) px: its kept boxes as
    regions (ids ``<prefix>-p<k>``) with their scores; ``score`` (default: the boxes' mean)."""
    h, w = size
    result = [
        labelstudio_result(b, classes[c], h, w, f"{prefix}-p{k}", s)
        for k, (b, c, s) in enumerate(kept)
    ]
    if score is None:
        score = float(np.mean([s for _, _, s in kept])) if kept else 0.0
    return {"model_version": model_version, "score": float(score), "result": result}


def task_image(exported: ExportedBatch, name: str, task_image_url: str | None) -> str:
    """A task's ``data.image``: an exported file under ``task_image_url`` (default the export's
    ``images/``), or an own image's URL, with ``task_image_url`` put before its path (without
    the leading ``/``): ``task_image_url="/data/local-files/?d="`` serves ``/data/x/a.jpg`` from a
    Label Studio whose local-files document root is ``/``."""
    if storage.is_absolute(name):
        if not task_image_url:
            return name
        prefix = task_image_url if task_image_url.endswith(("=", "/")) else task_image_url + "/"
        return prefix + name.split("://")[-1].lstrip("/")
    return storage.join(task_image_url or storage.join(exported.url, "images"), name)


def labelstudio_tasks(
    exported: ExportedBatch,
    detections: Mapping[int, Detections] | None = None,
    min_score: float = 0.3,
    task_image_url: str | None = None,
    model_version: str = MODEL_VERSION,
    scores: Mapping[int, float] | None = None,
) -> list[dict]:
    """Label Studio tasks for an export, with ``detections`` (score >= ``min_score``, clipped
    to the image) as ``predictions``; ``data.frame_id`` maps the task back to its frame.
    With ``scores`` (frame id -> acquisition score) each task has it as
    ``data.uncertainty`` and as its prediction's ``score``; else the prediction's score is the
    mean of its boxes'."""
    tasks = []
    for fid, (h, w), name in zip(
        exported.frame_ids, exported.sizes, exported.file_names, strict=True
    ):
        task: dict = {
            "data": {"image": task_image(exported, name, task_image_url), "frame_id": fid}
        }
        given = scores is not None and fid in scores
        if given:
            task["data"]["uncertainty"] = float(scores[fid])
        if detections is not None and fid in detections:
            kept = frame_detections(detections, fid, (h, w), min_score, exported.classes)
            score = float(scores[fid]) if given else None
            prediction = labelstudio_prediction(
                kept, exported.classes, (h, w), str(fid), model_version, score
            )
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


__all__ = [
    "FROM_NAME",
    "MODEL_VERSION",
    "TO_NAME",
    "config_labels",
    "labeling_config",
    "labelstudio_prediction",
    "labelstudio_result",
    "labelstudio_tasks",
    "task_image",
]
