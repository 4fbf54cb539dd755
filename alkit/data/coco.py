"""COCO detection files: writing frames as COCO, loading and validating a user's COCO file, images.

A loaded file becomes a :class:`CocoIndex` of :class:`CocoRecord` s, one per image, with boxes
``(N, 4)`` float32 ``[x, y, w, h]`` in pixels and labels ``(N,)`` int64 indices into ``classes``.
Categories are matched to alkit's classes by NAME, so a file with its own category ids works.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from alkit.data import storage, video
from alkit.data.classes import CLASSES
from alkit.data.letterbox import Letterbox
from alkit.errors import DataError

#: Boxes may stick out of the image by this much (px) before they count as out of bounds.
BOX_TOLERANCE = 0.5

_TOP_KEYS = ("images", "annotations", "categories")
_IMAGE_KEYS = ("id", "file_name", "height", "width")
_ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")
_CATEGORY_KEYS = ("id", "name")


@dataclass(frozen=True, eq=False)
class CocoRecord:
    """One image of a COCO file with its boxes.

    Attributes:
        frame_id: the COCO image id.
        file_name: image path relative to the images root (as written in the file).
        height, width: image size in pixels.
        boxes: ``(N, 4)`` float32 ``[x, y, w, h]`` in pixels.
        labels: ``(N,)`` int64 indices into the index's ``classes``.
        meta: the image's ``"alkit"`` entry (frame metadata), ``{}`` when absent.
        attributes: per-box tags from each annotation's ``"alkit"`` entry, ``()`` when absent.
    """

    frame_id: int
    file_name: str
    height: int
    width: int
    boxes: np.ndarray
    labels: np.ndarray
    meta: dict = field(default_factory=dict)
    attributes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, eq=False)
class CocoIndex:
    """A validated COCO file: its records in file order, and the classes labels index into."""

    url: str
    classes: tuple[str, ...]
    records: tuple[CocoRecord, ...]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[CocoRecord]:
        return iter(self.records)

    def __getitem__(self, position: int) -> CocoRecord:
        return self.records[position]

    @property
    def frame_ids(self) -> list[int]:
        """Image ids in file order."""
        return [r.frame_id for r in self.records]

    def record(self, frame_id: int) -> CocoRecord:
        """The record of image id ``frame_id``; ``KeyError`` if absent."""
        try:
            return self._by_id[int(frame_id)]
        except KeyError:
            raise KeyError(f"{self.url}: no image with id {frame_id}") from None

    @cached_property
    def _by_id(self) -> dict[int, CocoRecord]:
        return {r.frame_id: r for r in self.records}


# ---------------------------------------------------------------------------------------------
# writing


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _meta_of(item: Any) -> dict:
    meta = getattr(item, "meta", None)
    if meta is None:
        return {}
    if hasattr(meta, "as_dict"):
        meta = meta.as_dict()
    return {str(k): _plain(v) for k, v in dict(meta).items()}


def coco_annotation(
    annotation_id: int, image_id: int, label: int, xywh: Sequence[float]
) -> dict[str, Any]:
    """One COCO ground-truth annotation: class index ``label`` -> ``category_id`` label + 1,
    ``xywh`` in px."""
    x, y, w, h = xywh
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": label + 1,
        "bbox": [x, y, w, h],
        "area": w * h,
        "iscrowd": 0,
    }


def frames_to_coco(
    frames_or_records: Iterable[Any],
    file_names: Sequence[str],
    classes: Sequence[str] = CLASSES,
) -> dict:
    """COCO detection dict for frames (``alkit.sim.Frame``) or :class:`CocoRecord` s.

    Categories get ids ``1..C`` named by ``classes``; each image gets ``id = frame_id``, its
    ``file_name``, ``height``, ``width`` and its metadata under ``"alkit"``; each box becomes an
    annotation with ``bbox = [x, y, w, h]`` (px), ``area = w * h``, ``iscrowd = 0``.
    """
    items = list(frames_or_records)
    names = list(file_names)
    if len(items) != len(names):
        raise DataError(f"frames_to_coco: {len(items)} frames but {len(names)} file names")
    categories = [
        {"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(classes)
    ]
    images: list[dict] = []
    annotations: list[dict] = []
    seen: set[int] = set()
    for item, file_name in zip(items, names, strict=True):
        frame_id = int(item.frame_id)
        if frame_id in seen:
            raise DataError(f"frames_to_coco: duplicate frame id {frame_id}")
        seen.add(frame_id)
        boxes = np.asarray(item.boxes, dtype=np.float64).reshape(-1, 4)  # (N, 4)
        labels = np.asarray(item.labels, dtype=np.int64).reshape(-1)  # (N,)
        if len(boxes) != len(labels):
            raise DataError(
                f"frame {frame_id}: {len(boxes)} boxes but {len(labels)} labels (field 'labels')"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(
                f"frame {frame_id}: field 'labels' has values outside 0..{len(classes) - 1}"
            )
        image = {
            "id": frame_id,
            "file_name": str(file_name),
            "height": int(item.height),
            "width": int(item.width),
        }
        meta = _meta_of(item)
        if meta:
            image["alkit"] = meta
        images.append(image)
        attributes = tuple(getattr(item, "attributes", ()) or ())
        for j, ((x, y, w, h), label) in enumerate(
            zip(boxes.tolist(), labels.tolist(), strict=True)
        ):
            annotation = coco_annotation(len(annotations) + 1, frame_id, label, (x, y, w, h))
            if len(attributes) == len(labels) and attributes[j]:
                annotation["alkit"] = {"attributes": list(attributes[j])}
            annotations.append(annotation)
    return {
        "info": {"description": "written by alkit"},
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }


# ---------------------------------------------------------------------------------------------
# reading and validation


def normalize_name(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _require(entry: Any, keys: Sequence[str], where: str, source: str) -> None:
    if not isinstance(entry, Mapping):
        raise DataError(f"{source}: {where} is not a JSON object")
    for key in keys:
        if key not in entry:
            raise DataError(f"{source}: {where} is missing key {key!r}")


def _as_int(value: Any, key: str, where: str, source: str) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or float(value) != int(value):
        raise DataError(f"{source}: {where}: field {key!r} must be an integer, got {value!r}")
    return int(value)


def _category_table(
    categories: Any,
    source: str,
    classes: Sequence[str],
    ignore: set,
    category_map: Mapping[str, str],
) -> tuple[dict[int, int], set[int]]:
    """``(category id -> class index, ignored category ids)``."""
    if not isinstance(categories, list):
        raise DataError(f"{source}: 'categories' must be a list")
    class_index = {normalize_name(c): i for i, c in enumerate(classes)}
    mapped = {normalize_name(k): normalize_name(v) for k, v in category_map.items()}
    table: dict[int, int] = {}
    ignored: set[int] = set()
    for i, cat in enumerate(categories):
        where = f"categories[{i}]"
        _require(cat, _CATEGORY_KEYS, where, source)
        cat_id = _as_int(cat["id"], "id", where, source)
        if cat_id in table or cat_id in ignored:
            raise DataError(f"{source}: {where}: duplicate category id {cat_id}")
        name = str(cat["name"])
        if cat_id in ignore or name in ignore or normalize_name(name) in ignore:
            ignored.add(cat_id)
            continue
        key = mapped.get(normalize_name(name), normalize_name(name))
        if key not in class_index:
            raise DataError(
                f"{source}: {where}: category {name!r} (id {cat_id}) is not one of the classes "
                f"{', '.join(classes)}; map it with category_map={{{name!r}: ...}} or drop it "
                f"with ignore_categories=[{name!r}]"
            )
        table[cat_id] = class_index[key]
    return table, ignored


def check_bbox(bbox: Any, width: int, height: int, at: str) -> tuple[float, float, float, float]:
    """``bbox`` = [x, y, w, h] px as floats: finite, positive area, inside the ``width`` x
    ``height`` image (within ``BOX_TOLERANCE``); else ``DataError`` prefixed with ``at`` (the
    file and record)."""
    prefix = f"{at}: field 'bbox'"
    numeric = isinstance(bbox, list | tuple) and len(bbox) == 4
    numeric = numeric and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
    if not numeric:
        raise DataError(f"{prefix} must be 4 numbers [x, y, w, h] px, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise DataError(f"{prefix} has NaN or infinite values: {bbox!r}")
    if w <= 0 or h <= 0:
        raise DataError(f"{prefix} has zero or negative area (w={w:g}, h={h:g} px): {bbox!r}")
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        raise DataError(
            f"{prefix} lies outside the {width}x{height} (WxH) image (tolerance {tol} px): "
            f"[{x:g}, {y:g}, {w:g}, {h:g}]"
        )
    return x, y, w, h


def parse_coco(
    obj: Any,
    source: str = "<coco>",
    classes: Sequence[str] = CLASSES,
    ignore_categories: Iterable[str | int] = (),
    category_map: Mapping[str, str] | None = None,
) -> CocoIndex:
    """Validate a parsed COCO dict and index it; ``source`` names the file in errors.

    Annotations with ``iscrowd = 1`` (crowd regions, not single objects) are dropped, as are
    annotations of categories listed in ``ignore_categories`` (by name or id). Category names
    are compared case-insensitively with spaces and hyphens read as underscores, so COCO's
    ``"traffic light"`` is ``traffic_light``; ``category_map`` renames others (``{"motorcycle":
    "bicycle"}``). Any other problem is a ``DataError`` naming ``source`` and the record.
    """
    classes = tuple(classes)
    if not isinstance(obj, Mapping):
        raise DataError(f"{source}: top level must be a JSON object with {', '.join(_TOP_KEYS)}")
    for key in _TOP_KEYS:
        if key not in obj:
            raise DataError(f"{source}: missing top-level key {key!r}")
        if not isinstance(obj[key], list):
            raise DataError(f"{source}: top-level key {key!r} must be a list")
    ignore = set(ignore_categories)
    ignore |= {normalize_name(v) for v in ignore if isinstance(v, str)}
    cat_table, cat_ignored = _category_table(
        obj["categories"], source, classes, ignore, category_map or {}
    )

    images: dict[int, dict] = {}
    image_position: dict[int, int] = {}
    for i, image in enumerate(obj["images"]):
        where = f"images[{i}]"
        _require(image, _IMAGE_KEYS, where, source)
        image_id = _as_int(image["id"], "id", where, source)
        where = f"images[{i}] (id {image_id})"
        if image_id in images:
            raise DataError(
                f"{source}: {where}: duplicate image id {image_id} "
                f"(first at images[{image_position[image_id]}])"
            )
        height = _as_int(image["height"], "height", where, source)
        width = _as_int(image["width"], "width", where, source)
        if height <= 0 or width <= 0:
            raise DataError(f"{source}: {where}: fields 'height'/'width' must be positive")
        if not isinstance(image["file_name"], str) or not image["file_name"]:
            raise DataError(f"{source}: {where}: field 'file_name' must be a non-empty string")
        meta = image.get("alkit", {})
        if not isinstance(meta, Mapping):
            raise DataError(f"{source}: {where}: field 'alkit' must be an object")
        images[image_id] = {
            "file_name": image["file_name"],
            "height": height,
            "width": width,
            "meta": dict(meta),
            "boxes": [],
            "labels": [],
            "attributes": [],
        }
        image_position[image_id] = i

    seen_annotations: dict[int, int] = {}
    for i, ann in enumerate(obj["annotations"]):
        where = f"annotations[{i}]"
        _require(ann, _ANNOTATION_KEYS, where, source)
        ann_id = _as_int(ann["id"], "id", where, source)
        where = f"annotation id {ann_id} (annotations[{i}])"
        if ann_id in seen_annotations:
            raise DataError(
                f"{source}: {where}: duplicate annotation id {ann_id} "
                f"(first at annotations[{seen_annotations[ann_id]}])"
            )
        seen_annotations[ann_id] = i
        image_id = _as_int(ann["image_id"], "image_id", where, source)
        if image_id not in images:
            raise DataError(f"{source}: {where}: field 'image_id' {image_id} is not an image id")
        where = f"{where} on image id {image_id}"
        cat_id = _as_int(ann["category_id"], "category_id", where, source)
        if cat_id in cat_ignored or cat_id in ignore:
            continue
        if cat_id not in cat_table:
            raise DataError(
                f"{source}: {where}: field 'category_id' {cat_id} is not in 'categories' "
                f"(known ids: {sorted(cat_table)})"
            )
        if ann.get("iscrowd", 0):
            continue
        image = images[image_id]
        image["boxes"].append(
            check_bbox(ann["bbox"], image["width"], image["height"], f"{source}: {where}")
        )
        image["labels"].append(cat_table[cat_id])
        extra = ann.get("alkit", {})
        tags = extra.get("attributes", ()) if isinstance(extra, Mapping) else ()
        image["attributes"].append(tuple(str(t) for t in tags))

    records = []
    for image_id, image in images.items():
        attributes = tuple(image["attributes"])
        records.append(
            CocoRecord(
                frame_id=image_id,
                file_name=image["file_name"],
                height=image["height"],
                width=image["width"],
                boxes=np.asarray(image["boxes"], dtype=np.float32).reshape(-1, 4),  # (N, 4)
                labels=np.asarray(image["labels"], dtype=np.int64).reshape(-1),  # (N,)
                meta=image["meta"],
                attributes=attributes if any(attributes) else (),
            )
        )
    return CocoIndex(url=source, classes=classes, records=tuple(records))


def load_coco(
    instances_url: str,
    classes: Sequence[str] = CLASSES,
    ignore_categories: Iterable[str | int] = (),
    category_map: Mapping[str, str] | None = None,
) -> CocoIndex:
    """Read, validate and index a COCO detection file (see :func:`parse_coco`).

    Raises ``DataError`` naming the file and record for a missing file, malformed JSON (with
    its position), missing keys, duplicate image or annotation ids, annotations on unknown
    images or categories, and boxes that are NaN, of zero area or outside the image.
    """
    try:
        obj = storage.read_json(instances_url)
    except FileNotFoundError:
        raise DataError(f"COCO file not found: {instances_url}") from None
    return parse_coco(obj, instances_url, classes, ignore_categories, category_map)


# ---------------------------------------------------------------------------------------------
# images


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 RGB image (lossless)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(
            f"encode_png: expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}"
        )
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def read_image(
    url: str,
    expected_hw: tuple[int, int] | None = None,
    at_least: tuple[int, int] | None = None,
) -> np.ndarray:
    """The image at ``url`` as ``(H, W, 3)`` uint8 RGB (grayscale and RGBA are converted).

    ``url`` is an image file, or a video frame ``"<video url>#frame=<i>"``
    (:mod:`alkit.data.video`). A missing or undecodable file, or one whose ``(H, W)`` differs
    from ``expected_hw``, is a ``DataError`` naming the file (and both shapes). ``at_least``
    ``(h, w)``: see :func:`decode_image` (the size checked is the file's own).
    """
    array, hw = decode_image(url, at_least)
    if expected_hw is not None and hw != tuple(int(v) for v in expected_hw):
        raise DataError(
            f"image {url} is {hw[0]}x{hw[1]} (HxW) but its labels say "
            f"{expected_hw[0]}x{expected_hw[1]}"
        )
    return array


def decode_image(
    url: str, at_least: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels ``(h, w, 3)`` uint8 of the image (or video frame) at ``url``, and its own
    size ``(H, W)``.

    ``at_least`` ``(h, w)``: a JPEG file is decoded at the smallest of its DCT scales (1/1,
    1/2, 1/4, 1/8: Pillow's ``draft``, several times faster than a full decode) that is still
    at least this large, for an image that is resized down to it next (a letterbox:
    ``read_letterboxed``); other images are decoded whole.
    """
    if video.split_frame_uri(url):
        array = video.read_frame(url)
        return array, (int(array.shape[0]), int(array.shape[1]))
    return _read_image_file(url, at_least)


def read_letterboxed(url: str, box: Letterbox, says: str = "its labels say") -> np.ndarray:
    """The image at ``url`` letterboxed by ``box``: ``(box.in_height, box.in_width, 3)`` uint8.

    The one way image files reach a model (training on a team's labelled images, scoring its
    pool): a JPEG is decoded at a reduced scale (``decode_image``) and then resized as
    ``Letterbox.image`` does, so training and scoring see the same pixels. The file must be
    ``box.height x box.width`` (a ``DataError`` naming it and both sizes otherwise: "... but
    <says> HxW").
    """
    array, hw = decode_image(url, None if box.identity else box.resized)
    if hw != (box.height, box.width):
        raise DataError(f"image {url} is {hw[0]}x{hw[1]} (HxW) but {says} {box.height}x{box.width}")
    return box.fit(array)


def _read_image_file(url: str, at_least: tuple[int, int] | None) -> tuple[np.ndarray, tuple]:
    try:
        data = storage.read_bytes(url)
    except FileNotFoundError:
        raise DataError(f"image file not found: {url}") from None
    try:
        with Image.open(io.BytesIO(data)) as img:
            hw = (int(img.height), int(img.width))
            if at_least is not None and img.format == "JPEG":
                img.draft("RGB", (int(at_least[1]), int(at_least[0])))  # (w, h)
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            array = np.array(rgb, dtype=np.uint8)  # (h, w, 3)
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as err:
        raise DataError(f"cannot decode image {url}: {err}") from None
    return array, hw
