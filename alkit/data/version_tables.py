"""The two tables of a dataset version: normalization, validation and content digests.

``frames``: ``frame_id`` (int64, unique), ``image_uri`` (``sim:<id>`` or an image URL),
``height``, ``width`` (px), the ``META_FIELDS`` when known, other columns sorted by name.
``boxes``: ``frame_id``, ``category`` (class name), ``x``, ``y``, ``w``, ``h`` (float64 px,
rounded to 1e-4). Normalized tables are sorted, so equal content gives equal digests.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype, is_numeric_dtype

from alkit.data.coco import BOX_TOLERANCE
from alkit.data.datasets import SIM_PREFIX
from alkit.data.frames import META_FIELDS
from alkit.errors import ConfigError, DataError

FORMAT = 1
FRAME_COLUMNS: tuple[str, ...] = ("frame_id", "image_uri", "height", "width")
BOX_COLUMNS: tuple[str, ...] = ("frame_id", "category", "x", "y", "w", "h")
BOX_DECIMALS = 4
_INT_META = ("session_id", "frame_index")


def show_ids(ids: Any, limit: int = 5) -> str:
    """Up to ``limit`` ids as ``1, 2, 3 (and 4 more)`` for error messages."""
    ids = [int(i) if isinstance(i, int | np.integer) else i for i in list(ids)]
    more = f" (and {len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(str(i) for i in ids[:limit]) + more


def world_dict(world: Any) -> dict | None:
    """A world's config as a plain JSON dict: from a dict, a config (``.to_dict()``), a world
    (``.config.to_dict()``), or ``None``."""
    if world is None:
        return None
    if isinstance(world, dict):
        d = world
    elif hasattr(world, "to_dict"):
        d = world.to_dict()
    elif hasattr(getattr(world, "config", None), "to_dict"):
        d = world.config.to_dict()
    else:
        raise ConfigError(f"cannot read a world config from {type(world).__name__}")
    try:
        return json.loads(json.dumps(d, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"world config is not plain JSON: {err}") from None


def _canonical_json(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False
    )


# ---------------------------------------------------------------------------------------------
# normalization and validation


def _integers(df: pd.DataFrame, column: str, where: str) -> pd.Series:
    s = df[column]
    if s.isna().any():
        raise DataError(
            f"{where}: field {column!r} has nulls (rows {show_ids(np.flatnonzero(s.isna()))})"
        )
    if len(s) and not is_integer_dtype(s):
        raise DataError(f"{where}: field {column!r} must be integers, got dtype {s.dtype}")
    return s.astype("int64")


def normalize_frames(df: pd.DataFrame, where: str = "frames") -> pd.DataFrame:
    """Checked, typed and sorted frames table; ``DataError`` naming ``where``, frame ids, field."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in FRAME_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}")
    out = df.reset_index(drop=True).copy()
    for column in ("frame_id", "height", "width"):
        out[column] = _integers(out, column, where)
    dup = out["frame_id"][out["frame_id"].duplicated()].unique()
    if len(dup):
        ids = show_ids(sorted(dup))
        raise DataError(f"{where}: duplicate frame id(s) {ids} (field 'frame_id')")
    small = out["frame_id"][(out["height"] <= 0) | (out["width"] <= 0)]
    if len(small):
        ids = show_ids(small)
        raise DataError(f"{where}: frame id(s) {ids}: fields 'height'/'width' must be > 0")
    uri = out["image_uri"]
    not_str = ~uri.map(lambda v: isinstance(v, str) and bool(v)).astype(bool)
    if not_str.any():
        raise DataError(
            f"{where}: frame id(s) {show_ids(out['frame_id'][not_str])}: "
            "field 'image_uri' must be a non-empty string"
        )
    uri = uri.astype(object)
    is_sim = uri.map(lambda v: v.startswith(SIM_PREFIX)).astype(bool)
    bad_sim = is_sim & (uri != (SIM_PREFIX + out["frame_id"].astype(str)).astype(object))
    if bad_sim.any():
        raise DataError(
            f"{where}: frame id(s) {show_ids(out['frame_id'][bad_sim])}: field 'image_uri' "
            f"must be 'sim:<frame_id>' for a generated frame"
        )
    out["image_uri"] = uri
    for column in _INT_META:
        if column in out.columns:
            try:
                out[column] = out[column].astype("Int64")
            except (TypeError, ValueError):
                if column != "session_id":
                    raise DataError(f"{where}: field {column!r} must be integers") from None
                # own data names its sessions (a subfolder, a video file): kept as text
                out[column] = out[column].map(lambda v: v if pd.isna(v) else str(v))
    extra = [c for c in out.columns if c not in FRAME_COLUMNS]
    out = out.drop(columns=[c for c in extra if out[c].isna().all()])
    meta = [c for c in META_FIELDS if c in out.columns]
    others = sorted(c for c in out.columns if c not in FRAME_COLUMNS and c not in META_FIELDS)
    out = out[[*FRAME_COLUMNS, *meta, *others]]
    return out.sort_values("frame_id", kind="stable").reset_index(drop=True)


def normalize_boxes(df: pd.DataFrame, classes: Sequence[str], where: str = "boxes") -> pd.DataFrame:
    """Checked, rounded (1e-4 px) and sorted boxes table; ``DataError`` naming ids and field."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in BOX_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}")
    extra = [c for c in df.columns if c not in BOX_COLUMNS]
    if extra:
        raise DataError(f"{where}: unexpected column(s) {extra}; boxes have {list(BOX_COLUMNS)}")
    out = df.reset_index(drop=True)[list(BOX_COLUMNS)].copy()
    out["frame_id"] = _integers(out, "frame_id", where)
    category = out["category"].astype(object)
    unknown = ~category.isin(list(classes))
    if unknown.any():
        values = sorted({str(v) for v in category[unknown]})
        raise DataError(
            f"{where}: frame id(s) {show_ids(out['frame_id'][unknown].unique())}: field 'category' "
            f"has unknown class name(s) {values}; known classes: {', '.join(classes)}"
        )
    out["category"] = category
    for column in ("x", "y", "w", "h"):
        s = out[column]
        if len(s) and (not is_numeric_dtype(s) or is_bool_dtype(s)):
            raise DataError(f"{where}: field {column!r} must be numbers, got dtype {s.dtype}")
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(
                f"{where}: frame id(s) {show_ids(out['frame_id'][bad].unique())}: "
                f"field {column!r} is NaN or infinite"
            )
        out[column] = np.round(values, BOX_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    for column in ("w", "h"):
        bad = out[column] <= 0
        if bad.any():
            raise DataError(
                f"{where}: frame id(s) {show_ids(out['frame_id'][bad].unique())}: field {column!r} "
                "must be > 0 (zero-area box)"
            )
    return out.sort_values(list(BOX_COLUMNS), kind="stable").reset_index(drop=True)


def check_boxes_in_frames(frames: pd.DataFrame, boxes: pd.DataFrame, where: str = "boxes") -> None:
    """Every box belongs to a frame and lies inside it (``BOX_TOLERANCE`` px)."""
    sizes = frames.set_index("frame_id")[["height", "width"]]
    orphan = ~boxes["frame_id"].isin(sizes.index)
    if orphan.any():
        raise DataError(
            f"{where}: frame id(s) {show_ids(boxes['frame_id'][orphan].unique())} have boxes "
            "but are not in frames"
        )
    height = sizes["height"].reindex(boxes["frame_id"]).to_numpy()
    width = sizes["width"].reindex(boxes["frame_id"]).to_numpy()
    x, y, w, h = (boxes[c].to_numpy() for c in ("x", "y", "w", "h"))
    tol = BOX_TOLERANCE
    checks = {
        "x": x < -tol,
        "y": y < -tol,
        "x+w": x + w > width + tol,
        "y+h": y + h > height + tol,
    }
    for name, bad in checks.items():
        if bad.any():
            raise DataError(
                f"{where}: frame id(s) {show_ids(boxes['frame_id'][bad].unique())}: box field "
                f"{name!r} lies outside the image (tolerance {tol} px)"
            )


# ---------------------------------------------------------------------------------------------
# hashing


def _canonical_values(s: pd.Series) -> list:
    def missing(v: Any) -> bool:
        return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))

    if is_bool_dtype(s):
        return [None if missing(v) else bool(v) for v in s.tolist()]
    if is_integer_dtype(s):
        return [None if missing(v) else int(v) for v in s.tolist()]
    if is_float_dtype(s):
        return [
            None if missing(v) else (float(v) if math.isfinite(v) else repr(v)) for v in s.tolist()
        ]
    plain = (str, bool, int, float)
    out = []
    for v in s.tolist():
        if missing(v):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v if isinstance(v, plain) else str(v))
    return out


def frames_digest(frames: pd.DataFrame) -> str:
    """sha256 of a normalized frames table: column names, then one JSON row per line."""
    digest = hashlib.sha256()
    digest.update((_canonical_json(list(frames.columns)) + "\n").encode())
    columns = [_canonical_values(frames[c]) for c in frames.columns]
    for row in zip(*columns, strict=True):
        digest.update((_canonical_json(list(row)) + "\n").encode())
    return digest.hexdigest()


def boxes_digest(boxes: pd.DataFrame) -> str:
    """sha256 of the sorted boxes: little-endian int64 rows ``(frame_id, x, y, w, h)`` with
    coordinates in units of 1e-4 px, then the category names joined by newlines."""
    scale = 10.0**BOX_DECIMALS
    coords = np.rint(boxes[["x", "y", "w", "h"]].to_numpy(np.float64) * scale)  # (B, 4)
    rows = np.column_stack([boxes["frame_id"].to_numpy(np.int64), coords.astype(np.int64)])
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(rows, dtype="<i8").tobytes())  # (B, 5)
    digest.update("\n".join(boxes["category"].astype(str).tolist()).encode())
    return digest.hexdigest()


def content_hash(frames_digest: str, boxes_digest: str, classes: Sequence[str], world: Any) -> str:
    """The version hash: sha256 of canonical JSON of (format, digests, classes, world)."""
    payload = {
        "format": FORMAT,
        "frames": frames_digest,
        "boxes": boxes_digest,
        "classes": list(classes),
        "world": world,
    }
    return hashlib.sha256(_canonical_json(payload).encode()).hexdigest()
