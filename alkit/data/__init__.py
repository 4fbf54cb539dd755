"""Data: COCO I/O, materialized shards, torch datasets, pool manifests, dataset versions.

Everything reads and writes fsspec URLs (local paths, ``memory://``, ``s3://``, ...), and
every write is atomic (temporary name, then rename).
"""

from alkit.data.coco import CocoIndex, CocoRecord, frames_to_coco, load_coco, read_image
from alkit.data.datasets import (
    CocoFrames,
    VersionFrames,
    VirtualFrames,
    collate_frames,
    to_frames_dataset,
)
from alkit.data.manifest import read_manifest, write_manifest
from alkit.data.materialize import materialize
from alkit.data.versions import (
    DatasetVersion,
    append,
    list_versions,
    load_version,
)

__all__ = [
    "CocoFrames",
    "CocoIndex",
    "CocoRecord",
    "DatasetVersion",
    "VersionFrames",
    "VirtualFrames",
    "append",
    "collate_frames",
    "frames_to_coco",
    "list_versions",
    "load_coco",
    "load_version",
    "materialize",
    "read_image",
    "read_manifest",
    "to_frames_dataset",
    "write_manifest",
]
