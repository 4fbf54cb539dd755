"""Pool manifests: one Parquet row per frame, ``frame_id`` plus the frame metadata columns.

Manifests can hold millions of frames; :func:`read_manifest` pushes filters down to Parquet
row groups, so only matching rows (and requested columns) are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pandas.api.types import is_integer_dtype

from alkit.data import storage
from alkit.data.frames import META_FIELDS
from alkit.errors import DataError

#: Rows per Parquet row group: the granularity at which filters skip data.
ROW_GROUP_SIZE = 65_536


def validate_manifest(df: pd.DataFrame, where: str = "manifest") -> pd.DataFrame:
    """``df`` with ``frame_id`` as int64, after checking it is present and unique and that
    every ``META_FIELDS`` column is there; else a ``DataError`` naming ``where`` and the
    column or the duplicate ids."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    if "frame_id" not in df.columns:
        raise DataError(f"{where}: missing column 'frame_id'")
    frame_id = df["frame_id"]
    if frame_id.isna().any() or (len(df) and not is_integer_dtype(frame_id)):
        raise DataError(
            f"{where}: column 'frame_id' must be int64 without nulls, got {frame_id.dtype}"
        )
    missing = [c for c in META_FIELDS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing metadata column(s) {missing}")
    duplicated = frame_id[frame_id.duplicated()].unique()
    if len(duplicated):
        shown = ", ".join(str(int(v)) for v in sorted(duplicated)[:10])
        more = f" and {len(duplicated) - 10} more" if len(duplicated) > 10 else ""
        raise DataError(f"{where}: duplicate frame ids {shown}{more}")
    return df.assign(frame_id=frame_id.astype("int64"))


def write_manifest(df: pd.DataFrame, url: str) -> None:
    """Validate ``df`` (see :func:`validate_manifest`) and write it atomically as Parquet."""
    df = validate_manifest(df, where=f"manifest {url}")
    storage.atomic_write_parquet(df.reset_index(drop=True), url, row_group_size=ROW_GROUP_SIZE)


def _arrow_filters(filters: Mapping[str, Any]) -> list[tuple]:
    out = []
    for column, value in filters.items():
        if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
            out.append((column, "==", value))
        else:
            out.append((column, "in", list(value)))
    return out


def read_manifest(
    url: str,
    filters: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The manifest at ``url``, keeping rows whose columns match ``filters``.

    ``filters`` maps a column to allowed values (``{"time_of_day": ["night"]}``) or to one
    value (``{"segment": "pool"}``); conditions are ANDed. ``columns`` limits the columns read
    (``frame_id`` is always included). Unknown columns are a ``DataError``.
    """
    fs, path = storage.filesystem(url)
    if not fs.exists(path):
        raise DataError(f"manifest not found: {url}")
    with fs.open(path, "rb") as handle:
        available = set(pq.read_schema(handle).names)
    asked = set(filters or {}) | set(columns or ())
    unknown = sorted(asked - available)
    if unknown:
        raise DataError(f"manifest {url}: unknown column(s) {unknown}; it has {sorted(available)}")
    read_columns = None
    if columns is not None:
        read_columns = ["frame_id", *[c for c in columns if c != "frame_id"]]
    arrow_filters = _arrow_filters(filters) if filters else None
    df = storage.read_parquet(url, columns=read_columns, filters=arrow_filters)
    return df.reset_index(drop=True)
