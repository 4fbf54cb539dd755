"""Per-frame maps of an ensemble, computed on demand: the providers behind a HeatmapViewer.

One forward pass of every member per frame gives the member probabilities ``[M, C, h, w]``,
the mutual information ``[C, h, w]`` and the ensemble's mean detections; the last
``cache_size`` frames are kept (LRU), so moving a slider back and forth costs nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alkit.data.classes import CLASSES
from alkit.data.frames import Frame
from alkit.detector.inference import prepare_for_inference
from alkit.detector.network import DetectorOutput, UNetDetector, decode
from alkit.errors import ConfigError
from alkit.query.acquisition import check_probabilities, mutual_information


@dataclass(frozen=True)
class FrameMaps:
    """Everything shown for one frame.

    Attributes:
        frame: the world's frame (image ``(H, W, 3)`` uint8, ground truth, metadata).
        member_probs: ``(M, C, h, w)`` float32 sigmoid probabilities per member.
        mi: ``(C, h, w)`` float32 mutual information in nats.
        boxes, scores, labels: the mean detector's detections, ``(K, 4)`` xywh px, ``(K,)``,
            ``(K,)`` int64.
    """

    frame: Frame
    member_probs: np.ndarray
    mi: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def ensemble_members(members: Any) -> list[UNetDetector]:
    """``UNetDetector`` s of an ``Ensemble``, a list of detectors or of ``DetectorModule`` s;
    raises ``ConfigError`` if empty, of another type, or of different architectures."""
    found = list(getattr(members, "members", members))
    if not found:
        raise ConfigError("an ensemble needs at least one member; got none")
    out = []
    for i, member in enumerate(found):
        detector = getattr(member, "model", member)
        if not isinstance(detector, UNetDetector):
            raise ConfigError(
                f"ensemble member {i} is a {type(member).__name__}, expected a UNetDetector "
                "(or a DetectorModule / Ensemble holding them)"
            )
        if out and detector.config != out[0].config:
            raise ConfigError(
                f"ensemble member {i} has config {detector.config}, member 0 has "
                f"{out[0].config}; all members need one architecture"
            )
        out.append(detector)
    return out


class EnsembleMaps:
    """Providers ``image``, ``heatmap``, ``member_probs``, ``gt``, ``detections``, ``caption``
    for frames of ``world``, from one forward pass of every member per frame (LRU-cached).

    Args:
        world: anything with ``frame(frame_id) -> Frame`` (``alkit.sim.World``).
        members: an ``Ensemble`` or a sequence of ``UNetDetector`` / ``DetectorModule``.
        classes: names of the heatmap channels; must match the members' ``num_classes``.
        cache_size: frames kept in memory.
        score_threshold: lowest detection score returned by ``detections``.
        max_detections: most detections per frame.
    """

    def __init__(
        self,
        world: Any,
        members: Any,
        classes: Sequence[str] = CLASSES,
        cache_size: int = 32,
        score_threshold: float = 0.05,
        max_detections: int = 50,
    ) -> None:
        detectors = ensemble_members(members)
        config = detectors[0].config
        if config.num_classes != len(classes):
            raise ConfigError(
                f"members output {config.num_classes} classes but {len(classes)} class names "
                f"were given ({', '.join(classes)})"
            )
        if cache_size < 1:
            raise ConfigError(f"cache_size must be >= 1, got {cache_size}")
        self.world = world
        self.classes = tuple(classes)
        self.stride = config.stride
        self.n_members = len(detectors)
        self.cache_size = cache_size
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        self._members = [prepare_for_inference(m, channels_last=False) for m in detectors]
        self._cache: OrderedDict[int, FrameMaps] = OrderedDict()

    def __call__(self, frame_id: int) -> FrameMaps:
        """The maps of one frame (computed once, then served from the cache)."""
        fid = int(frame_id)
        hit = self._cache.get(fid)
        if hit is not None:
            self._cache.move_to_end(fid)
            return hit
        maps = self._compute(fid)
        self._cache[fid] = maps
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return maps

    @torch.inference_mode()
    def _compute(self, frame_id: int) -> FrameMaps:
        frame = self.world.frame(frame_id)
        image = torch.from_numpy(np.ascontiguousarray(frame.image))  # (H, W, 3) uint8
        x = image.permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
        outputs = [m(x) for m in self._members]
        probs = torch.stack([torch.sigmoid(o.heatmap_logits.float()) for o in outputs])
        check_probabilities(probs, frame_ids=[frame_id])  # (M, 1, C, h, w)
        mean = DetectorOutput(
            heatmap_logits=torch.logit(probs.mean(0), eps=1e-6),  # (1, C, h, w)
            size=torch.stack([o.size.float() for o in outputs]).mean(0),  # (1, 2, h, w)
            offset=torch.stack([o.offset.float() for o in outputs]).mean(0),  # (1, 2, h, w)
        )
        dets = decode(mean, self.stride, k=self.max_detections, threshold=self.score_threshold)
        return FrameMaps(
            frame=frame,
            member_probs=probs[:, 0].numpy(),  # (M, C, h, w)
            mi=mutual_information(probs)[0].numpy(),  # (C, h, w)
            boxes=dets[0].boxes.numpy(),  # (K, 4)
            scores=dets[0].scores.numpy(),  # (K,)
            labels=dets[0].labels.numpy(),  # (K,)
        )

    def image(self, frame_id: int) -> np.ndarray:
        """``(H, W, 3)`` uint8."""
        return self(frame_id).frame.image

    def heatmap(self, frame_id: int) -> np.ndarray:
        """Mutual information ``(C, h, w)`` in nats."""
        return self(frame_id).mi

    def member_probs(self, frame_id: int) -> np.ndarray:
        """Per-member probabilities ``(M, C, h, w)``."""
        return self(frame_id).member_probs

    def gt(self, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth ``(boxes (N, 4) xywh px, labels (N,))``."""
        frame = self(frame_id).frame
        return frame.boxes, frame.labels

    def detections(self, frame_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean-ensemble detections ``(boxes (K, 4) xywh px, labels (K,), scores (K,))``."""
        maps = self(frame_id)
        return maps.boxes, maps.labels, maps.scores

    def caption(self, frame_id: int) -> str:
        """Frame id and metadata, e.g. ``"frame 12 · session 0 · night · rain · urban"``."""
        m = self(frame_id).frame.meta
        return (
            f"frame {frame_id} · session {m.session_id} · {m.time_of_day} · {m.weather} · {m.route}"
        )
