"""An unlabelled pool: frame ids, a way to load each frame, and a metadata table.

The loop's QUERY step takes a ``Pool``, whatever the data source: the synthetic world
(``alkit.sim.experiment.world_pool``) is one source among others. The metadata table has one
row per frame, a ``frame_id`` column and any metadata columns (``session_id``,
``frame_index``, ``time_of_day``, ``weather``, ``route``, ``geo_cell``, ...); the pool filter,
METADATA and MANUAL read only those columns and name the ones they miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from alkit.data.datasets import FrameSource
from alkit.data.version_tables import show_ids
from alkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from alkit.data.versions import DatasetVersion


def filter_metadata(table: pd.DataFrame, filters: Mapping[str, Sequence] | None) -> pd.DataFrame:
    """Rows whose columns take one of the listed values, e.g. ``{"time_of_day": ["night"]}``."""
    out = table
    for column, values in (filters or {}).items():
        if column not in out.columns:
            raise ConfigError(f"filter on unknown column {column!r}; columns: {list(out.columns)}")
        allowed = [values] if isinstance(values, str | int) else list(values)
        out = out[out[column].isin(allowed)]
    return out


@dataclass(frozen=True)
class Pool:
    """Frames to score and select from.

    Attributes:
        source: loads a frame: ``source.frame(frame_id)`` has ``image`` ``(H, W, 3)`` uint8.
        metadata: one row per frame: ``frame_id`` (int, unique) + metadata columns.
    """

    source: FrameSource
    metadata: pd.DataFrame

    def __post_init__(self) -> None:
        if "frame_id" not in self.metadata.columns:
            raise DataError(
                f"pool metadata has no 'frame_id' column; columns: {list(self.metadata.columns)}"
            )
        ids = self.metadata.frame_id
        if ids.duplicated().any():
            raise DataError(
                f"pool metadata: duplicate frame id(s) {show_ids(ids[ids.duplicated()].tolist())} "
                "(field 'frame_id')"
            )

    def __len__(self) -> int:
        return len(self.metadata)

    def __repr__(self) -> str:
        return f"Pool({len(self)} frames, columns {list(self.metadata.columns)})"

    @property
    def frame_ids(self) -> list[int]:
        """The frame ids, in table order."""
        return self.metadata.frame_id.astype(int).tolist()

    def where(self, filters: Mapping[str, Sequence] | None) -> Pool:
        """The frames whose metadata pass ``filters`` (``filter_metadata``)."""
        return Pool(self.source, filter_metadata(self.metadata, filters))

    def every(self, stride: int) -> Pool:
        """Every ``stride``-th frame, in table order."""
        if stride < 1:
            raise ConfigError(f"pool stride must be >= 1, got {stride}")
        return Pool(self.source, self.metadata.iloc[::stride])

    def already_labelled(self, version: DatasetVersion) -> list[int]:
        """Frame ids of this pool that ``version`` holds: the same frame id, or (where the
        metadata has a ``uri`` column) the same image."""
        meta = self.metadata
        taken = meta.frame_id.isin(version.frame_ids)
        if "uri" in meta.columns:
            taken |= meta.uri.astype(str).isin(set(version.frames.image_uri.astype(str)))
        return meta.frame_id[taken].astype(int).tolist()

    def without(self, frame_ids: Iterable[int]) -> Pool:
        """The frames not in ``frame_ids`` (e.g. those already labelled)."""
        return Pool(self.source, self.metadata[~self.metadata.frame_id.isin(list(frame_ids))])


__all__ = ["Pool", "filter_metadata"]
