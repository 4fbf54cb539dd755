"""Per-frame maps of an ensemble, computed on demand: the providers behind a HeatmapViewer.

One forward pass of every member per frame gives the member probabilities ``[M, C, h, w]``,
the mutual information ``[C, h, w]`` and the ensemble's mean detections; the last
``cache_size`` frames are kept (LRU), so moving a slider back and forth costs nothing.

Frames come from any source with ``frame(frame_id) -> Frame`` (or a ``Pool``: its
``source``). The synthetic ``World``'s frames are the model's input as they are. A source of
own images (``alkit.data.sources``) also has ``letterbox(frame_id)`` and
``original(frame_id)``: its frames are letterboxed into the input, so the providers show the
original image, crop the padding out of the maps and stretch them over it
(:func:`map_to_original`), and give detections in the original image's pixels
(``alkit.annotate.detections.in_original``); such frames have no ground truth.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from alkit.annotate.detections import as_numpy, in_original
from alkit.data.classes import CLASSES
from alkit.data.frames import Frame
from alkit.data.letterbox import Letterbox
from alkit.data.pool import Pool
from alkit.detector.inference import prepare_for_inference
from alkit.detector.network import UNetDetector, decode
from alkit.ensemble.store import members_output
from alkit.errors import ConfigError, DataError
from alkit.query.acquisition import check_probabilities, mutual_information

#: Shortest side, in cells, of a map stretched over an original image (finer when the
#: letterboxed content spans fewer cells, so the map keeps the image's aspect ratio).
MIN_MAP_CELLS = 16
#: Metadata shown in a caption after the frame id and session, when a frame has them.
CAPTION_FIELDS = ("time_of_day", "weather", "route")
#: Original images kept in memory (own data: ``image`` reads them without a forward pass).
ORIGINALS_CACHED = 4


@dataclass(frozen=True)
class FrameMaps:
    """Everything shown for one frame.

    Attributes:
        frame: the source's frame (image ``(H, W, 3)`` uint8 model input, ground truth,
            metadata).
        member_probs: ``(M, C, h, w)`` float32 sigmoid probabilities per member.
        mi: ``(C, h, w)`` float32 mutual information in nats.
        boxes, scores, labels: the mean detector's detections, ``(K, 4)`` xywh px, ``(K,)``,
            ``(K,)`` int64.
        letterbox: where the original image sits in the input (own data), else ``None``.
            With one, the maps cover the original image only (padding cropped out) and the
            boxes are in the original image's pixels.
    """

    frame: Frame
    member_probs: np.ndarray
    mi: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    letterbox: Letterbox | None = None


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


def _named_classes(members: Any) -> tuple[str, ...] | None:
    """The class names an ``Ensemble`` (``.classes``) or its ``DetectorModule`` s carry."""
    names = getattr(members, "classes", None)
    if names is None:
        try:
            first = next(iter(getattr(members, "members", members)))
        except (TypeError, StopIteration):
            return None
        hparams = getattr(first, "hparams", None)
        names = hparams.get("classes") if isinstance(hparams, Mapping) else None
    return None if names is None else tuple(str(n) for n in names)


def ensemble_classes(
    members: Any, num_classes: int, classes: Sequence[str] | None = None, world: bool = True
) -> tuple[str, ...]:
    """The names of the members' ``num_classes`` heatmap channels.

    ``classes`` if given, else the ensemble's own (``Ensemble.classes``, a
    ``DetectorModule``'s saved ``classes``); plain ``UNetDetector`` s carry no names: they
    get the synthetic world's ``CLASSES`` when ``world`` and the counts match, otherwise
    ``ConfigError`` asks for ``classes=``. Given names must match the ensemble's.
    """
    named = _named_classes(members)
    if classes is not None:
        given = tuple(classes)
        if len(given) != num_classes:
            raise ConfigError(
                f"members output {num_classes} classes but {len(given)} class names "
                f"were given ({', '.join(given)})"
            )
        if named is not None and given != named:
            raise ConfigError(
                f"classes {list(given)} differ from the ensemble's classes {list(named)}; "
                "leave classes out to use the ensemble's"
            )
        return given
    if named is not None:
        if len(named) != num_classes:
            raise ConfigError(
                f"members output {num_classes} classes but the ensemble names "
                f"{len(named)} ({', '.join(named)})"
            )
        return named
    if world and num_classes == len(CLASSES):
        return CLASSES
    raise ConfigError(
        f"the members carry no class names (plain UNetDetectors with {num_classes} "
        f"classes); pass classes= with {num_classes} names, or an Ensemble"
    )


def frame_source(source: Any) -> Any:
    """The frame source of a ``Pool`` (its ``source``), or ``source`` itself; raises
    ``ConfigError`` unless it has ``frame(frame_id)``."""
    if isinstance(source, Pool):
        source = source.source
    if not callable(getattr(source, "frame", None)):
        raise ConfigError(
            f"expected a frame source with frame(frame_id) (a World, a Pool or its source), "
            f"got {type(source).__name__}"
        )
    return source


def _content_cells(pad: int, size: int, stride: int, n: int) -> tuple[float, float]:
    """First and last map cell whose centre lies on the image (not on the padding)."""
    first = math.ceil(pad / stride - 0.5)
    last = math.floor((pad + size) / stride - 0.5)
    if first > last:  # the image is thinner than a cell: the cell holding its middle
        first = last = math.floor((pad + size / 2) / stride)
    return float(min(max(first, 0), n - 1)), float(min(max(last, 0), n - 1))


def _sample_at(maps: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``maps`` along ``axis`` at fractional cell ``coords``."""
    n = maps.shape[axis]
    coords = np.clip(coords, 0.0, n - 1)
    lo = np.floor(coords).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    t = (coords - lo).astype(np.float32)
    shape = [1] * maps.ndim
    shape[axis] = len(coords)
    t = t.reshape(shape)
    return np.take(maps, lo, axis=axis) * (1 - t) + np.take(maps, hi, axis=axis) * t


def map_to_original(maps: np.ndarray, box: Letterbox, stride: int) -> np.ndarray:
    """Maps over the model input -> maps over the original image (padding cropped out).

    Args:
        maps: ``(..., h, w)`` at output ``stride`` over the ``box.in_height x box.in_width``
            input; cell ``(i, j)`` covers input px ``[i s, (i+1) s) x [j s, (j+1) s)``.
        box: where the original image sits in the input.

    Returns:
        ``(..., hc, wc)`` float32 covering exactly the letterboxed image (so stretched over
        the original it lines up with its objects), sampled bilinearly between the centres
        of cells on the image (never blending in padding cells); about one cell per input
        cell, at least ``MIN_MAP_CELLS`` on the shorter side. An identity letterbox with
        ``h, w >= MIN_MAP_CELLS`` returns the maps unchanged.
    """
    maps = np.asarray(maps, np.float32)
    h, w = maps.shape[-2:]
    if (h * stride, w * stride) != (box.in_height, box.in_width):
        raise ValueError(
            f"maps of {h}x{w} cells at stride {stride} do not cover the "
            f"{box.in_height}x{box.in_width} input of the letterbox"
        )
    rh, rw = box.resized
    pad_x, pad_y = box.offset
    k = max(1.0, MIN_MAP_CELLS / (min(rh, rw) / stride))
    hc, wc = max(1, round(k * rh / stride)), max(1, round(k * rw / stride))
    # centre of output cell i, in input px, then in map cells (cell j's centre: (j + .5) s)
    u = (pad_x + (np.arange(wc) + 0.5) * rw / wc) / stride - 0.5  # (wc,)
    v = (pad_y + (np.arange(hc) + 0.5) * rh / hc) / stride - 0.5  # (hc,)
    u = np.clip(u, *_content_cells(pad_x, rw, stride, w))
    v = np.clip(v, *_content_cells(pad_y, rh, stride, h))
    out = _sample_at(_sample_at(maps, u, maps.ndim - 1), v, maps.ndim - 2)  # (..., hc, wc)
    return np.ascontiguousarray(out, dtype=np.float32)


def _present(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # an array-like value
        return True


def meta_dict(meta: Any) -> dict:
    """A frame's metadata as a dict: a ``FrameMeta``, a mapping, a pandas row or ``None``."""
    if meta is None:
        return {}
    if isinstance(meta, Mapping):
        return dict(meta)
    for name in ("as_dict", "to_dict"):
        if callable(getattr(meta, name, None)):
            return dict(getattr(meta, name)())
    return dict(vars(meta))


def frame_caption(frame_id: int, meta: Any) -> str:
    """``"frame 12 · session 0 · night · rain · urban"``: the frame id, then the session and
    ``CAPTION_FIELDS`` the metadata has (absent or missing values are left out)."""
    values = meta_dict(meta)
    parts = [f"frame {frame_id}"]
    if _present(values.get("session_id")):
        parts.append(f"session {values['session_id']}")
    parts += [str(values[k]) for k in CAPTION_FIELDS if _present(values.get(k))]
    return " · ".join(parts)


class EnsembleMaps:
    """Providers ``image``, ``heatmap``, ``member_probs``, ``gt``, ``detections``, ``caption``
    for frames of ``source``, from one forward pass of every member per frame (LRU-cached).

    Args:
        source: anything with ``frame(frame_id) -> Frame`` (``alkit.sim.World``, a pool's
            source of own images), or a ``Pool`` (its ``source`` is used). A source with
            ``letterbox(frame_id)`` and ``original(frame_id)`` is shown on the original
            images: maps cropped to the letterboxed image and stretched over the original,
            detections in original px, no ground truth (``has_gt`` is ``False``).
        members: an ``Ensemble`` or a sequence of ``UNetDetector`` / ``DetectorModule``.
        classes: names of the heatmap channels; default the ensemble's ``classes`` (see
            ``ensemble_classes``); must match the members' ``num_classes``.
        cache_size: frames kept in memory.
        score_threshold: lowest detection score returned by ``detections``.
        max_detections: most detections per frame.
    """

    def __init__(
        self,
        source: Any,
        members: Any,
        classes: Sequence[str] | None = None,
        cache_size: int = 32,
        score_threshold: float = 0.05,
        max_detections: int = 50,
    ) -> None:
        detectors = ensemble_members(members)
        config = detectors[0].config
        self.source = frame_source(source)
        self.letterboxed = callable(getattr(self.source, "letterbox", None))
        if self.letterboxed and not callable(getattr(self.source, "original", None)):
            raise ConfigError(
                f"{type(self.source).__name__} has letterbox() but no original(frame_id): "
                "a source of own images needs both"
            )
        self.classes = ensemble_classes(
            members, config.num_classes, classes, world=not self.letterboxed
        )
        if cache_size < 1:
            raise ConfigError(f"cache_size must be >= 1, got {cache_size}")
        self.stride = config.stride
        self.n_members = len(detectors)
        self.cache_size = cache_size
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        self._members = [prepare_for_inference(m, channels_last=False) for m in detectors]
        self._cache: OrderedDict[int, FrameMaps] = OrderedDict()
        self._originals: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def world(self) -> Any:
        """The frame source (the name from when it was always the synthetic world)."""
        return self.source

    @property
    def has_gt(self) -> bool:
        """Whether frames have ground truth to show (the world's do, own images do not)."""
        return not self.letterboxed

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

    def _letterbox(self, frame_id: int, input_shape: tuple[int, ...] | None = None) -> Letterbox:
        box = self.source.letterbox(frame_id)
        if not isinstance(box, Letterbox):
            raise DataError(
                f"frame {frame_id}: letterbox() returned a {type(box).__name__}, "
                "expected an alkit.data.letterbox.Letterbox"
            )
        if input_shape is not None and tuple(input_shape[:2]) != (box.in_height, box.in_width):
            raise DataError(
                f"frame {frame_id}: the frame's image is {input_shape[0]}x{input_shape[1]} but "
                f"its letterbox puts it in a {box.in_height}x{box.in_width} input"
            )
        return box

    @torch.inference_mode()
    def _compute(self, frame_id: int) -> FrameMaps:
        frame = self.source.frame(frame_id)
        pixels = np.ascontiguousarray(frame.image)  # (H, W, 3) uint8
        box = self._letterbox(frame_id, pixels.shape) if self.letterboxed else None
        image = torch.from_numpy(pixels)
        x = image.permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
        probs, mean = members_output(self._members, x)  # (M, 1, C, h, w), the mean detector
        check_probabilities(probs, frame_ids=[frame_id])
        dets = decode(mean, self.stride, k=self.max_detections, threshold=self.score_threshold)[0]
        member_probs = probs[:, 0].numpy()  # (M, C, h, w)
        mi = mutual_information(probs)[0].numpy()  # (C, h, w)
        if box is not None:
            member_probs = map_to_original(member_probs, box, self.stride)  # (M, C, hc, wc)
            mi = map_to_original(mi, box, self.stride)  # (C, hc, wc)
            dets = in_original(dets, box)  # boxes in the original image's px
        boxes = as_numpy(dets.boxes)  # (K, 4) px
        scores, labels = as_numpy(dets.scores), as_numpy(dets.labels)  # (K,), (K,)
        return FrameMaps(frame, member_probs, mi, boxes, scores, labels, box)

    def original(self, frame_id: int) -> np.ndarray:
        """Own data: the original image ``(h, w, 3)`` uint8 (a few are kept in memory)."""
        if not self.letterboxed:
            raise ConfigError(
                f"{type(self.source).__name__} frames are the model's input; they have no "
                "separate original image (use image())"
            )
        fid = int(frame_id)
        hit = self._originals.get(fid)
        if hit is not None:
            self._originals.move_to_end(fid)
            return hit
        image = np.asarray(self.source.original(fid))
        box = self._letterbox(fid)
        if tuple(image.shape[:2]) != (box.height, box.width):
            raise DataError(
                f"frame {fid}: original() gave a {image.shape[0]}x{image.shape[1]} image but "
                f"its letterbox is for {box.height}x{box.width}"
            )
        self._originals[fid] = image
        if len(self._originals) > ORIGINALS_CACHED:
            self._originals.popitem(last=False)
        return image

    def image(self, frame_id: int) -> np.ndarray:
        """The image the maps cover: the world's frame ``(H, W, 3)`` uint8, or for own data
        the original image ``(h, w, 3)`` uint8 (read without running the ensemble)."""
        if self.letterboxed:
            return self.original(frame_id)
        return self(frame_id).frame.image

    def heatmap(self, frame_id: int) -> np.ndarray:
        """Mutual information ``(C, h, w)`` in nats (over the original image for own data)."""
        return self(frame_id).mi

    def member_probs(self, frame_id: int) -> np.ndarray:
        """Per-member probabilities ``(M, C, h, w)`` (over the original image for own data)."""
        return self(frame_id).member_probs

    def gt(self, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth ``(boxes (N, 4) xywh px, labels (N,))`` (in original px)."""
        maps = self(frame_id)
        boxes = maps.frame.boxes
        if maps.letterbox is not None:
            boxes = maps.letterbox.to_original(boxes).astype(np.float32)
        return boxes, maps.frame.labels

    def detections(self, frame_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean-ensemble detections ``(boxes (K, 4) xywh px, labels (K,), scores (K,))``, in
        the original image's px."""
        maps = self(frame_id)
        return maps.boxes, maps.labels, maps.scores

    def caption(self, frame_id: int) -> str:
        """Frame id and the metadata there is, e.g. ``"frame 12 · session 0 · night · rain ·
        urban"`` (world) or ``"frame 3 · session drive-07"`` (own images)."""
        hit = self._cache.get(int(frame_id))  # else the metadata without a forward pass
        frame = hit.frame if hit is not None else self.source.frame(frame_id)
        return frame_caption(frame_id, frame.meta)


__all__ = [
    "EnsembleMaps",
    "FrameMaps",
    "ensemble_classes",
    "ensemble_members",
    "frame_caption",
    "frame_source",
    "map_to_original",
]
