"""The model the backend serves: an ensemble, the pool's scores made with it, its version.

``predict`` gives, per task image, the ensemble's mean detections in the original image's
px (kept at ``min_score``, as pre-annotations are) and the frame's acquisition scores: the
stored ones for a scored pool frame, else computed now from the members' mean MI maps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from alkit.annotate.detections import KeptBox, frame_detections, in_original
from alkit.annotate.labelstudio import labelstudio_prediction
from alkit.data.datasets import collate_frames
from alkit.ensemble.store import Ensemble, load_ensemble
from alkit.evaluate.predict import predict_detections
from alkit.query.acquisition import frame_scores
from alkit.query.pool_query import scoring_precision
from alkit.query.score import mi_heatmaps, read_scores
from alkit.serve.frames import TaskImage
from alkit.serve.ordering import QueueOrder


def model_version(ensemble: Ensemble, round_index: int) -> str:
    """``alkit-r<round>-<8 hex of the members' checkpoint sha256s>``."""
    hashes = "".join(ensemble.checkpoint_hashes)
    return f"alkit-r{round_index}-{hashlib.sha256(hashes.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Prediction:
    """One task's prediction: ``kept`` boxes, ``scores`` (class of interest -> acquisition
    score, mean MI in nats), the task ``score`` (queue position share, lowest first) and
    whether the scores were ``stored`` (a scored pool frame) or computed now."""

    kept: list[KeptBox]
    scores: dict[str, float]
    score: float
    stored: bool
    by: str  # the class whose turn gives the frame its place (AL's picked_for)

    def to_labelstudio(self, image: TaskImage, classes: Sequence[str], version: str) -> dict:
        """Label Studio's prediction, with the raw acquisition score beside the task score
        (``acquisition``: Label Studio keeps only ``result``, ``score``, ``model_version``)."""
        prefix = str(image.frame_id) if image.frame_id is not None else "url"
        out = labelstudio_prediction(self.kept, classes, image.size, prefix, version, self.score)
        top = self.by
        out["acquisition"] = {
            "score": self.scores[top],
            "class": top,
            "scores": self.scores,
            "stored": self.stored,
        }
        return out


class ServedModel:
    """An ensemble and its pool scores (see the module docstring).

    Args:
        ensemble_path: its ``ensemble.json``.
        scores_url: the pool's score shards made with it.
        classes_of_interest: what AL takes turns over.
        round_index: the backend's round (0: the run's own ensemble).
        trained_on: the hash of the version it trained on.
        min_score: detections below it are left out of the predictions.
        score_precision: the precision the run's QUERY scored in (``None``: the members'
            training precision).
    """

    def __init__(
        self,
        ensemble_path: str | Path,
        scores_url: str,
        classes_of_interest: Sequence[str],
        round_index: int,
        trained_on: str,
        min_score: float = 0.3,
        score_precision: str | None = None,
    ) -> None:
        self.ensemble_path, self.scores_url = Path(ensemble_path), scores_url
        self.ensemble: Ensemble = load_ensemble(ensemble_path)
        self.classes = self.ensemble.classes
        self.classes_of_interest = tuple(classes_of_interest)
        table = read_scores(scores_url)
        self.order = QueueOrder.of(table, self.classes_of_interest)
        self.stored: pd.DataFrame = table.set_index("frame_id")[list(self.classes_of_interest)]
        self.round, self.trained_on, self.min_score = round_index, trained_on, min_score
        self.version = model_version(self.ensemble, round_index)
        #: scores computed now use the pool's scoring precision (``query_pool``'s), so a frame
        #: scores the same whether it was in the pool or not
        self.precision = scoring_precision(self.ensemble, score_precision, accelerator="cpu")

    def frame_scores(self, images: Sequence[TaskImage]) -> list[tuple[dict[str, float], bool]]:
        """Per image: class of interest -> acquisition score, and whether it was stored."""
        out: list[tuple[dict[str, float], bool] | None] = []
        todo = []
        for k, image in enumerate(images):
            if image.frame_id is not None and image.frame_id in self.stored.index:
                row = self.stored.loc[image.frame_id]
                out.append(({c: float(row[c]) for c in self.classes_of_interest}, True))
            else:
                out.append(None)
                todo.append(k)
        if todo:
            batch = collate_frames([images[k].item for k in todo])["image"]  # (B, 3, H, W)
            bf16 = self.precision.startswith("bf16")
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                mi = mi_heatmaps(self.ensemble, batch)  # (B, C, h, w)
                per_class = frame_scores(mi, "mean")  # (B, C)
            index = [self.classes.index(c) for c in self.classes_of_interest]
            for row, k in zip(per_class.tolist(), todo, strict=True):
                out[k] = (
                    {
                        c: float(row[i])
                        for c, i in zip(self.classes_of_interest, index, strict=True)
                    },
                    False,
                )
        return out  # type: ignore[return-value]

    def predict(self, images: Sequence[TaskImage]) -> list[Prediction]:
        """The predictions of ``images`` (in order)."""
        if not images:
            return []
        items = [dict(image.item, frame_id=k) for k, image in enumerate(images)]
        dets = predict_detections(self.ensemble, items, batch_size=16)  # k -> input px
        out = []
        for k, (image, (scores, stored)) in enumerate(
            zip(images, self.frame_scores(images), strict=True)
        ):
            original = {k: in_original(dets[k], image.letterbox)}
            kept = frame_detections(original, k, image.size, self.min_score, self.classes)
            position, by = self.order.position(scores)
            share = position / float(self.order.n * len(self.classes_of_interest))
            out.append(Prediction(kept, scores, share, stored, by))
        return out


__all__ = ["Prediction", "ServedModel", "model_version"]
