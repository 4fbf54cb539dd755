"""Materialize frames of a (virtual) world as PNG shards plus a COCO file on any fsspec URL.

Layout under ``url``::

    images/shard-00000/000000000042.png     shard = position in frame_ids // shard_size
    annotations/instances.json              COCO; file_name relative to images/

The result is read back with :func:`alkit.data.coco.load_coco` and
:func:`alkit.data.coco.read_image`, the same loader a user's own COCO data set goes through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.coco import CocoRecord, encode_png, frames_to_coco, parse_coco
from alkit.data.datasets import FrameSource
from alkit.errors import ConfigError, DataError

IMAGES_DIR = "images"
INSTANCES_PATH = "annotations/instances.json"


def shard_file_name(position: int, frame_id: int, shard_size: int) -> str:
    """``shard-<position // shard_size:05d>/<frame_id:012d>.png``, relative to ``images/``."""
    return f"shard-{position // shard_size:05d}/{frame_id:012d}.png"


def materialize(
    source: FrameSource,
    frame_ids: Iterable[int],
    url: str,
    shard_size: int = 1000,
    classes: Sequence[str] = CLASSES,
    progress: bool = True,
) -> str:
    """Write ``source.frame(i)`` for every ``i`` in ``frame_ids`` as PNG + COCO under ``url``.

    Every file is written atomically (temporary name, then rename) and ``instances.json``
    last, after it has been validated by the COCO loader, so an interrupted run never leaves
    a COCO file that points at missing images. Re-running overwrites the same files.

    Returns:
        The URL of ``<url>/annotations/instances.json``.

    Raises:
        DataError: no frame ids, duplicate frame ids, or a frame with a bad image or boxes.
    """
    ids = [int(i) for i in frame_ids]
    if not ids:
        raise DataError(f"materialize: no frame ids given; nothing to write to {url}")
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise DataError(f"materialize: duplicate frame ids {duplicates[:10]} for {url}")
    if shard_size < 1:
        raise ConfigError(f"materialize: shard_size must be >= 1, got {shard_size}")
    images_url = storage.join(url, IMAGES_DIR)
    instances_url = storage.join(url, INSTANCES_PATH)

    records: list[CocoRecord] = []
    for position, frame_id in enumerate(tqdm(ids, desc="materialize", disable=not progress)):
        frame = source.frame(frame_id)
        if int(frame.frame_id) != frame_id:
            raise DataError(f"materialize: asked for frame {frame_id}, got frame {frame.frame_id}")
        image = np.asarray(frame.image)  # (H, W, 3) uint8
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DataError(
                f"materialize: frame {frame_id}: field 'image' must be (H, W, 3) uint8, "
                f"got {image.shape} {image.dtype}"
            )
        file_name = shard_file_name(position, frame_id, shard_size)
        storage.atomic_write_bytes(storage.join(images_url, file_name), encode_png(image))
        records.append(
            CocoRecord(
                frame_id=frame_id,
                file_name=file_name,
                height=int(image.shape[0]),
                width=int(image.shape[1]),
                boxes=np.asarray(frame.boxes, dtype=np.float32).reshape(-1, 4),  # (N, 4)
                labels=np.asarray(frame.labels, dtype=np.int64).reshape(-1),  # (N,)
                meta=frame.meta.as_dict() if frame.meta is not None else {},
                attributes=tuple(getattr(frame, "attributes", ()) or ()),
            )
        )
    coco = frames_to_coco(records, [r.file_name for r in records], classes)
    parse_coco(coco, instances_url, classes)  # the user-data validator, before publishing
    storage.atomic_write_json(instances_url, coco)
    return instances_url
