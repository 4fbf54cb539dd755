"""APPEND a labelled batch as a new immutable dataset version, and trace every version's lineage.

Every version written by :func:`append_batch` records in its ``info`` (stored in
``version.json``, not part of the content hash):

- ``parent``: the parent version's hash (also the version's own ``parent``);
- ``selection``: the selection manifest's hash (``Selection.hash``), or ``None``;
- ``ensemble``: the sha256 of each ensemble checkpoint that scored the pool;
- ``code``: ``git:<commit>`` of the working tree alkit runs from (``+dirty`` with uncommitted
  changes to tracked files), else ``alkit <package version>``;
- ``params``: the round's parameters (plain values); ``created``: UTC time (ISO 8601);
- ``labelling``: who labelled the batch, its frames, boxes and labelling seconds.

:func:`lineage` walks from a version back to the initial set; ``python -m alkit lineage
<hash> --root <root>`` prints it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from alkit import __version__
from alkit.data import storage
from alkit.data.labels import LabelledBatch
from alkit.data.version_tables import show_ids
from alkit.data.versions import (
    DatasetVersion,
    append,
    list_versions,
    load_version,
    version_info,
    version_url,
)
from alkit.errors import DataError, IntegrityError


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def code_version() -> str:
    """``git:<commit>`` (``+dirty`` with uncommitted changes to tracked files) when alkit runs
    from a git working tree, else ``alkit <package version>``."""
    package = Path(__file__).resolve().parent.parent  # alkit/
    try:
        top = Path(_git("rev-parse", "--show-toplevel", cwd=package))
        if (top / "alkit" / "__init__.py").resolve() != package / "__init__.py":
            raise FileNotFoundError("alkit is installed, not run from this working tree")
        head = _git("rev-parse", "HEAD", cwd=top)
        dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=top)
    except (OSError, subprocess.SubprocessError):
        return f"alkit {__version__}"
    return f"git:{head}" + ("+dirty" if dirty else "")


class Selection(Protocol):
    """What APPEND reads of a selection record (``alkit.query.selection``)."""

    hash: str
    frame_ids: Sequence[int]
    ensemble: Sequence[str]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values, anything else as its ``str``."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


def lineage_info(
    selection: Selection | str | None = None,
    ensemble_hashes: Sequence[str] = (),
    params: dict | None = None,
    parent: str | None = None,
) -> dict:
    """The lineage part of a version's ``info`` (see the module docstring). Pass it as
    ``info=`` when building the initial version, so the chain starts with code and params."""
    if selection is not None and not isinstance(selection, str):
        selection = selection.hash
    return {
        "parent": parent,
        "selection": selection,
        "ensemble": [str(h) for h in ensemble_hashes],
        "code": code_version(),
        "params": json.loads(json.dumps(dict(params or {}), sort_keys=True, default=_plain)),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def labelling_info(batch: LabelledBatch) -> dict:
    """What labelling a batch took, as a version's lineage records it."""
    return {
        "source": batch.source,
        "frames": len(batch),
        "boxes": batch.num_boxes,
        "seconds": round(batch.total_seconds, 3),
        "measured_frames": int(sum(f.measured for f in batch.frames)),
    }


def append_batch(
    root: str,
    parent_version: DatasetVersion | str,
    batch: LabelledBatch,
    selection: Selection | str | None = None,
    ensemble_hashes: Sequence[str] | None = None,
    params: dict | None = None,
) -> DatasetVersion:
    """APPEND: store ``parent + batch`` as a new immutable version under ``root`` and return it.

    Args:
        root: the versions store (any fsspec URL); the parent is saved there too if absent.
        parent_version: the parent version, or its hash in ``root``.
        batch: the labelled frames (validated when they were imported).
        selection: the selection manifest (or its hash) the frames were picked by; with a
            manifest, every frame of the batch must be in it.
        ensemble_hashes: checkpoint sha256s; default: the manifest's ``ensemble``.
        params: the round's parameters (plain values), recorded in ``info``.

    Appending the same labels again gives the same hash and writes nothing: a batch whose
    frames are all in the parent returns the parent. Everything is checked (boxes inside their
    images, frames already labelled differently, classes, world) before anything is written;
    each file is written atomically. The returned version is read back from ``root``, so its
    ``info`` is the one stored (the first append's, for a repeated one).

    Raises:
        DataError: a frame not in the selection, a bad box, or a frame already in the parent
            with different labels (the message names the frames and the field).
        ConfigError: the batch has other classes or another world than the parent.
    """
    if isinstance(parent_version, str):
        parent = load_version(root, parent_version)
    else:
        parent = parent_version
    if selection is not None and not isinstance(selection, str):
        outside = sorted(set(batch.frame_ids) - set(selection.frame_ids))
        if outside:
            raise DataError(
                f"append_batch: frame(s) {show_ids(outside)} (field 'frame_ids') are not in "
                f"selection {selection.hash[:12]}; label the selected frames"
            )
        if ensemble_hashes is None:
            ensemble_hashes = selection.ensemble
    info = lineage_info(selection, ensemble_hashes or (), params, parent.hash)
    info["labelling"] = labelling_info(batch)
    child = append(parent, batch.to_version(), info=info)  # all checks before any write
    parent.save(root)
    if child.hash == parent.hash:
        return load_version(root, parent.hash)
    child.save(root)
    return load_version(root, child.hash)


def resolve_version(root: str, version: str) -> str:
    """The full hash of a stored version given its hash or a unique prefix (>= 4 chars)."""
    if storage.exists(storage.join(version_url(root, version), "version.json")):
        return version
    matches = [h for h in list_versions(root) if len(version) >= 4 and h.startswith(version)]
    if len(matches) == 1:
        return matches[0]
    known = show_ids(list_versions(root), 10) or "none"
    what = "matches several versions" if matches else "matches no version"
    raise DataError(f"version {version!r} {what} under {root}; known versions: {known}")


def lineage(root: str, version_hash: str, verify: bool = False) -> list[dict]:
    """The chain from ``version_hash`` (a hash or unique prefix) back to the initial set.

    Returns one dict per version, newest first: ``hash``, ``parent``, ``frames``, ``boxes``,
    ``boxes_per_class``, ``added_frames``, ``selection``, ``ensemble``, ``code``, ``params``,
    ``created``, ``labelling`` (``None`` where a version did not record it). With ``verify``,
    every version's tables are loaded and their hashes recomputed (``IntegrityError``).
    """
    current: str | None = resolve_version(root, version_hash)
    chain: list[dict] = []
    while current is not None:
        if any(v["hash"] == current for v in chain):
            raise IntegrityError(f"lineage of {version_hash} under {root} loops at {current}")
        try:
            record = version_info(root, current)
        except DataError:
            child = chain[-1]["hash"] if chain else version_hash
            raise IntegrityError(
                f"version {child} names parent {current}, which is not stored under {root}"
            ) from None
        if verify:
            load_version(root, current)
        info = record.get("info") or {}
        counts = record.get("counts") or {}
        per_class = counts.get("boxes_per_class") or {}
        order = [c for c in record.get("classes") or [] if c in per_class]
        chain.append(
            {
                "hash": current,
                "parent": record.get("parent"),
                "frames": counts.get("frames"),
                "boxes": counts.get("boxes"),
                "boxes_per_class": {c: per_class[c] for c in order},
                "added_frames": info.get("added_frames"),
                "selection": info.get("selection"),
                "ensemble": list(info.get("ensemble") or []),
                "code": info.get("code"),
                "params": info.get("params"),
                "created": info.get("created"),
                "labelling": info.get("labelling"),
            }
        )
        current = record.get("parent")
    return chain


def format_lineage(chain: Sequence[dict]) -> str:
    """The chain as text, one block per version (newest first)."""
    blocks = []
    for v in chain:
        per_class = ", ".join(f"{c} {n}" for c, n in v["boxes_per_class"].items())
        added = f"  (+{v['added_frames']})" if v.get("added_frames") is not None else ""
        ensemble = v["ensemble"] or ["-"]
        lines = [
            f"version    {v['hash']}",
            f"parent     {v['parent'] or '- (initial set)'}",
            f"frames     {v['frames']}{added}",
            f"boxes      {v['boxes']}" + (f"  ({per_class})" if per_class else ""),
            f"selection  {v['selection'] or '-'}",
            f"ensemble   {ensemble[0]}",
            *(f"           {h}" for h in ensemble[1:]),
            f"code       {v['code'] or '-'}",
            f"time       {v['created'] or '-'}",
        ]
        labelling = v.get("labelling")
        if labelling:
            hours = labelling.get("seconds", 0) / 3600
            lines.append(f"labelled   by {labelling.get('source')}, {hours:.2f} h")
        if v.get("params"):
            lines.append(f"params     {json.dumps(v['params'], sort_keys=True, default=str)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
