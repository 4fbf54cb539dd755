"""Torch datasets over frames: generated on demand, read from COCO, or from a dataset version.

Every dataset yields the same item::

    {"image": float32 [3, H, W] in [0, 1], "boxes": float32 [N, 4] xywh px,
     "labels": int64 [N], "frame_id": int}

Datasets hold only plain values (ids, small arrays, URLs, the world object), never open
files, so they pickle into DataLoader workers. Datasets of image files take an ``input_size``
``(H, W)``: each image is letterboxed into it (``alkit.data.letterbox``) and its boxes with
it, so images of any size batch together; without one, images keep their size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.coco import load_coco, read_image, read_letterboxed
from alkit.data.frames import Frame
from alkit.data.letterbox import Letterbox
from alkit.data.letterbox import input_size as check_input_size
from alkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from alkit.data.versions import DatasetVersion

SIM_PREFIX = "sim:"


@runtime_checkable
class FrameSource(Protocol):
    """Anything that generates frames by id, deterministically (e.g. ``alkit.sim.World``)."""

    def frame(self, frame_id: int) -> Frame: ...


def frame_item(frame_id: int, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> dict:
    """The dataset item for an ``(H, W, 3)`` uint8 image, ``(N, 4)`` boxes, ``(N,)`` labels."""
    pixels = torch.from_numpy(np.ascontiguousarray(image))  # (H, W, 3) uint8
    return {
        "image": pixels.permute(2, 0, 1).contiguous().float().div_(255.0),  # (3, H, W)
        "boxes": torch.from_numpy(np.array(boxes, dtype=np.float32).reshape(-1, 4)),  # (N, 4)
        "labels": torch.from_numpy(np.array(labels, dtype=np.int64).reshape(-1)),  # (N,)
        "frame_id": int(frame_id),
    }


def fit_item(frame_id: int, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, size) -> dict:
    """``frame_item`` with the image letterboxed into ``size`` ``(H, W)`` (``None``: as is)."""
    if size is None:
        return frame_item(frame_id, image, boxes, labels)
    box = Letterbox.of(image.shape[:2], size)
    return frame_item(frame_id, box.image(image), box.to_input(boxes), labels)


def file_item(frame_id: int, url: str, hw, boxes: np.ndarray, labels: np.ndarray, size) -> dict:
    """The item of the image file at ``url`` (``hw`` ``(H, W)``, checked), letterboxed into
    ``size`` as scoring reads it (``read_letterboxed``; ``None``: as it is)."""
    if size is None:
        return frame_item(frame_id, read_image(url, hw), boxes, labels)
    box = Letterbox.of(hw, size)
    return frame_item(frame_id, read_letterboxed(url, box), box.to_input(boxes), labels)


def collate_frames(batch: Sequence[dict]) -> dict:
    """Batch items: ``image`` stacked to ``[B, 3, H, W]``, ``frame_id`` an int64 ``[B]`` tensor,
    ``boxes``/``labels`` kept as lists of per-frame tensors (frames differ in box count)."""
    if not batch:
        raise DataError("collate_frames: empty batch")
    shapes = {tuple(item["image"].shape) for item in batch}
    if len(shapes) > 1:
        detail = ", ".join(f"frame {b['frame_id']}: {tuple(b['image'].shape)}" for b in batch[:8])
        raise DataError(f"collate_frames: images differ in shape ({detail}); resize them first")
    return {
        "image": torch.stack([item["image"] for item in batch]),  # (B, 3, H, W)
        "boxes": [item["boxes"] for item in batch],  # B x (N_i, 4)
        "labels": [item["labels"] for item in batch],  # B x (N_i,)
        "frame_id": torch.tensor([item["frame_id"] for item in batch], dtype=torch.int64),  # (B,)
    }


def _source_frame(source: FrameSource, frame_id: int) -> Frame:
    frame = source.frame(frame_id)
    if int(frame.frame_id) != frame_id:
        raise DataError(f"frame source returned frame {frame.frame_id} when asked for {frame_id}")
    return frame


class VirtualFrames(Dataset):
    """Frames generated on demand by ``source`` (a world); nothing is stored on disk."""

    def __init__(self, source: FrameSource, frame_ids: Iterable[int]) -> None:
        self.source = source
        self.frame_ids: list[int] = [int(i) for i in frame_ids]

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __getitem__(self, index: int) -> dict:
        frame = _source_frame(self.source, self.frame_ids[index])
        return frame_item(frame.frame_id, frame.image, frame.boxes, frame.labels)


class PoolImages(VirtualFrames):
    """The images of ``source``'s frames, for scoring: items as above with no boxes.

    A source with an ``image(frame_id)`` method (the world renders the pixels without working
    out boxes; an image source skips its metadata row) is asked for that, else for
    ``frame(frame_id).image``: the same pixels either way.
    """

    def __getitem__(self, index: int) -> dict:
        fid = self.frame_ids[index]
        image = getattr(self.source, "image", None)
        pixels = image(fid) if callable(image) else _source_frame(self.source, fid).image
        return frame_item(fid, pixels, NO_BOXES, NO_LABELS)


NO_BOXES = np.zeros((0, 4), np.float32)  # (0, 4)
NO_LABELS = np.zeros(0, np.int64)  # (0,)


def images_root_candidates(instances_url: str) -> list[str]:
    """Where a COCO file's relative ``file_name`` s are looked for, in order: the file's own
    folder, its ``images/`` (Label Studio's COCO export: ``result.json`` + ``images/``) and
    ``<folder>/../images`` (COCO's layout, ``annotations/`` beside ``images/``; what
    ``materialize`` writes)."""
    folder = storage.parent(instances_url)
    return [folder, storage.join(folder, "images"), storage.join(storage.parent(folder), "images")]


def _relative_names(instances_url: str, file_names: Iterable[str] | None) -> list[str]:
    if file_names is None:
        try:
            obj = storage.read_json(instances_url)
        except FileNotFoundError:
            raise DataError(f"COCO file not found: {instances_url}") from None
        images = obj.get("images") if isinstance(obj, Mapping) else None
        images = images if isinstance(images, list) else []
        file_names = [i.get("file_name") for i in images if isinstance(i, Mapping)]
    return [str(n) for n in file_names if isinstance(n, str) and n and not storage.is_absolute(n)]


def find_images_root(
    instances_url: str, file_names: Iterable[str] | None = None, images_root: str = ""
) -> str:
    """The folder a COCO file's relative ``file_name`` s (default: read from the file) are
    under: ``images_root`` when given, else the first of ``images_root_candidates`` that
    holds the first of them. ``DataError`` listing the places tried and naming
    ``-p images_root`` when none does."""
    names = _relative_names(instances_url, file_names)
    candidates = [images_root] if images_root else images_root_candidates(instances_url)
    if not names:
        return candidates[0]
    for root in candidates:
        if storage.exists(storage.resolve(root, names[0])):
            return root
    tried = ", ".join(storage.resolve(root, names[0]) for root in candidates)
    raise DataError(
        f"{instances_url}: image file {names[0]!r} (field 'file_name' of its first image) "
        f"not found; tried {tried}. Give the folder its file_names are relative to as "
        "-p images_root=FOLDER"
    )


def default_images_root(instances_url: str, file_names: Iterable[str] | None = None) -> str:
    """The first of ``images_root_candidates`` that holds the COCO file's first relative
    ``file_name`` (``find_images_root``); where none does, ``<folder>/../images`` (so a
    missing image is reported, with its path, when it is read)."""
    try:
        return find_images_root(instances_url, file_names)
    except DataError:
        return images_root_candidates(instances_url)[-1]


class CocoFrames(Dataset):
    """Frames of a COCO data set (a materialized world or a user's own), validated on load.

    Args:
        instances_url: the COCO file (any fsspec URL).
        images_root: folder that ``file_name`` s are relative to; defaults to the first
            of ``images_root_candidates`` holding them (``default_images_root``).
        classes, ignore_categories, category_map: see :func:`alkit.data.coco.load_coco`.
        input_size: ``(H, W)`` every image is letterboxed into; ``None``: sizes as they are.
    """

    def __init__(
        self,
        instances_url: str,
        images_root: str | None = None,
        classes: Sequence[str] = CLASSES,
        ignore_categories: Iterable[str | int] = (),
        category_map: Mapping[str, str] | None = None,
        input_size: Sequence[int] | None = None,
    ) -> None:
        self.instances_url = instances_url
        self.input_size = None if input_size is None else check_input_size(input_size)
        self.index = load_coco(instances_url, classes, ignore_categories, category_map)
        names = [r.file_name for r in self.index]
        self.images_root = images_root or default_images_root(instances_url, names)
        self.frame_ids: list[int] = self.index.frame_ids

    def __len__(self) -> int:
        return len(self.index)

    def image_url(self, index: int) -> str:
        """URL of the image of item ``index``."""
        return storage.resolve(self.images_root, self.index[index].file_name)

    def __getitem__(self, index: int) -> dict:
        record = self.index[index]
        hw = (record.height, record.width)
        return file_item(record.frame_id, self.image_url(index), hw, record.boxes, record.labels,
                         self.input_size)  # fmt: skip


class VersionFrames(Dataset):
    """Frames with given labels whose images come from a world (``sim:<id>``) or a URL.

    Args:
        frame_ids: ``(F,)`` ids.
        image_uris: ``(F,)`` ``"sim:<frame_id>"`` (generate with ``source``) or image URLs.
        sizes: ``(F,)`` ``(height, width)`` each image must have.
        boxes: ``(F,)`` arrays ``(N_i, 4)`` float32 xywh px; labels: ``(F,)`` arrays ``(N_i,)``.
        source: the world for ``sim:`` URIs (its own boxes are ignored: these labels win).
        input_size: ``(H, W)`` the images (and boxes) are letterboxed into; ``None``: as is.
    """

    def __init__(
        self,
        frame_ids: Sequence[int],
        image_uris: Sequence[str],
        sizes: Sequence[tuple[int, int]],
        boxes: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        source: FrameSource | None = None,
        input_size: Sequence[int] | None = None,
    ) -> None:
        n = len(frame_ids)
        if not (len(image_uris) == len(sizes) == len(boxes) == len(labels) == n):
            raise DataError(
                "VersionFrames: frame_ids, image_uris, sizes, boxes, labels differ in length"
            )
        if source is None and any(str(u).startswith(SIM_PREFIX) for u in image_uris):
            raise DataError("VersionFrames: 'sim:' image URIs need a world passed as source")
        self.frame_ids: list[int] = [int(i) for i in frame_ids]
        self.image_uris: list[str] = [str(u) for u in image_uris]
        self.sizes: list[tuple[int, int]] = [(int(h), int(w)) for h, w in sizes]
        self.boxes = list(boxes)
        self.labels = list(labels)
        self.source = source
        self.input_size = None if input_size is None else check_input_size(input_size)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def _image(self, index: int) -> np.ndarray:
        frame_id, uri, size = self.frame_ids[index], self.image_uris[index], self.sizes[index]
        if not uri.startswith(SIM_PREFIX):
            return read_image(uri, size)
        image = np.asarray(_source_frame(self.source, frame_id).image)  # (H, W, 3)
        if tuple(image.shape[:2]) != size:
            raise DataError(
                f"frame {frame_id}: the world generated a {image.shape[0]}x{image.shape[1]} image "
                f"but the labels say {size[0]}x{size[1]} (is it the version's world?)"
            )
        return image

    def __getitem__(self, index: int) -> dict:
        fid, boxes, labels = self.frame_ids[index], self.boxes[index], self.labels[index]
        uri = self.image_uris[index]
        if not uri.startswith(SIM_PREFIX):
            return file_item(fid, uri, self.sizes[index], boxes, labels, self.input_size)
        return fit_item(fid, self._image(index), boxes, labels, self.input_size)


class CachedFrames(Dataset):
    """A frames dataset held in memory: images as one uint8 tensor ``(N, 3, H, W)``.

    Generating a world frame costs ~5 ms; caching once makes every later epoch cost only
    indexing. Items are those of ``alkit.data.datasets`` (float image in [0, 1]).
    """

    def __init__(self, dataset: Dataset, num_workers: int = 0, batch_size: int = 64) -> None:
        # its own generator: filling the cache draws nothing from the global RNG, so a member
        # trains the same whether or not an earlier member (or a killed run) filled it
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_frames,
            generator=torch.Generator(),
        )
        images, self.boxes, self.labels, ids = [], [], [], []
        for batch in loader:
            images.append(batch["image"].mul(255).round_().to(torch.uint8))  # (b, 3, H, W)
            self.boxes.extend(batch["boxes"])
            self.labels.extend(batch["labels"])
            ids.append(batch["frame_id"])
        if not images:
            raise DataError("CachedFrames: the dataset is empty")
        self.images = torch.cat(images)  # (N, 3, H, W) uint8
        self.frame_ids: list[int] = torch.cat(ids).tolist()

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index].float().div_(255.0),  # (3, H, W)
            "boxes": self.boxes[index],  # (N, 4)
            "labels": self.labels[index],  # (N,)
            "frame_id": self.frame_ids[index],
        }


def to_frames_dataset(
    version: DatasetVersion, world: FrameSource | None = None, input_size=None
) -> VersionFrames:
    """A torch Dataset of the version's frames with the VERSION's labels (items as in
    ``alkit.data.datasets``). ``sim:`` images are generated by ``world``, which must have the
    version's config; other images are read from their ``image_uri`` and letterboxed into
    ``input_size`` ``(H, W)`` when given (their boxes with them)."""
    needs_world = (
        version.frames["image_uri"].map(lambda v: v.startswith(SIM_PREFIX)).astype(bool).any()
    )
    if needs_world:
        from alkit.data.version_tables import world_dict

        if world is None:
            raise ConfigError(f"version {version.hash[:12]} has generated frames: pass its world")
        given = world_dict(world) if hasattr(getattr(world, "config", None), "to_dict") else None
        if given is not None and given != version.world:
            raise ConfigError(
                f"version {version.hash[:12]} was made with a different world config than the "
                "world passed"
            )
    labels = version.labels_by_frame()
    ids = version.frame_ids
    return VersionFrames(
        frame_ids=ids,
        image_uris=version.frames["image_uri"].tolist(),
        sizes=list(
            zip(version.frames["height"].tolist(), version.frames["width"].tolist(), strict=True)
        ),
        boxes=[labels[i][0] for i in ids],
        labels=[labels[i][1] for i in ids],
        source=world,
        input_size=input_size,
    )


def cached_frames(
    version: DatasetVersion, world: FrameSource | None, frame_ids: Iterable[int], input_size=None
) -> CachedFrames:
    """The frames of ``version`` among ``frame_ids`` (in the version's order), with the
    version's labels, held in memory: the new frames a retraining draws from."""
    wanted = set(int(i) for i in frame_ids)
    full = to_frames_dataset(version, world, input_size)
    rows = [i for i, fid in enumerate(full.frame_ids) if fid in wanted]
    return CachedFrames(Subset(full, rows))
