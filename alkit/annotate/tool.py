"""Labelling by people in a tool, through files: :class:`ToolLabeller`.

The formats live in one module each: ``alkit.annotate.labelstudio`` (labelling config, tasks,
regions), ``alkit.annotate.coco_export`` (COCO for other tools), ``alkit.annotate.export``
(the export folder), ``alkit.annotate.parsers`` (reading what the tools wrote),
``alkit.annotate.detections`` (pre-annotations in the original image's px). Their names are
importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alkit.annotate.coco_export import coco_for_labelling
from alkit.annotate.detections import frame_detections, in_original, kept_boxes
from alkit.annotate.export import (
    EXPORT_RECORD,
    OWN_TABLE_COLUMNS,
    export_for_labelling,
    load_export,
)
from alkit.annotate.labelstudio import (
    FROM_NAME,
    TO_NAME,
    labeling_config,
    labelstudio_result,
    labelstudio_tasks,
    task_image,
)
from alkit.annotate.parsers import import_labels, parse_coco_labels, parse_labelstudio
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.datasets import FrameSource
from alkit.data.labels import CostModel, LabelledBatch, check_frame_ids
from alkit.detector.network import Detections
from alkit.errors import AlkitError, ConfigError


class LabelsPending(AlkitError):
    """The frames were exported, but the finished labels are not there yet."""


class ToolLabeller:
    """Labelling by people in a tool, through files; a :class:`~alkit.data.labels.Labeller`.

    ``label(frame_ids)`` exports the frames to ``url`` (once), then imports the finished
    labels from ``labels_url`` (default ``<url>/labelled.json``: the Label Studio export or a
    COCO file) and raises :class:`LabelsPending` saying what to do while it is absent.
    """

    def __init__(
        self,
        source: FrameSource,
        url: str,
        detections: Mapping[int, Detections] | None = None,
        labels_url: str | None = None,
        cost: CostModel | None = None,
        selection: str | None = None,
        min_score: float = 0.3,
        task_image_url: str | None = None,
        classes: Sequence[str] = CLASSES,
        scores: Mapping[int, float] | None = None,
    ) -> None:
        self.source, self.url, self.detections = source, url, detections
        self.scores = scores
        self.labels_url = labels_url or storage.join(url, "labelled.json")
        self.cost, self.selection, self.min_score = cost, selection, min_score
        self.task_image_url, self.classes = task_image_url, tuple(classes)

    def label(self, frame_ids: Sequence[int]) -> LabelledBatch:
        """The imported labels of ``frame_ids``; exports them first if not yet done."""
        ids = check_frame_ids(frame_ids, "ToolLabeller.label")
        if storage.exists(storage.join(self.url, EXPORT_RECORD)):
            if list(load_export(self.url).frame_ids) != ids:
                raise ConfigError(
                    f"{self.url} holds an export of other frames; use one folder per batch"
                )
        else:
            export_for_labelling(
                self.source,
                ids,
                self.url,
                self.detections,
                self.selection,
                self.min_score,
                self.task_image_url,
                self.classes,
                self.scores,
            )
        if not storage.exists(self.labels_url):
            raise LabelsPending(
                f"{len(ids)} frames are exported to {self.url}: create a Label Studio project "
                "with labeling_config.xml, import tasks.json, label, export as JSON (or COCO) "
                f"and give that file as the labels (-p labels=FILE; default {self.labels_url})"
            )
        return import_labels(self.url, self.labels_url, self.cost)


__all__ = [
    "EXPORT_RECORD",
    "FROM_NAME",
    "OWN_TABLE_COLUMNS",
    "TO_NAME",
    "LabelsPending",
    "ToolLabeller",
    "coco_for_labelling",
    "export_for_labelling",
    "frame_detections",
    "import_labels",
    "in_original",
    "kept_boxes",
    "labeling_config",
    "labelstudio_result",
    "labelstudio_tasks",
    "load_export",
    "parse_coco_labels",
    "parse_labelstudio",
    "task_image",
]
