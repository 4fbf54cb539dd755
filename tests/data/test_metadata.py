"""Pool manifests: validation on write, filtered reads."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from alkit.data import manifest as manifest_mod
from alkit.data import storage
from alkit.data.frames import META_FIELDS
from alkit.data.manifest import read_manifest, write_manifest
from alkit.errors import DataError


def make_manifest(n: int = 12) -> pd.DataFrame:
    ids = np.arange(n, dtype=np.int64) * 3
    return pd.DataFrame(
        {
            "frame_id": ids,
            "session_id": ids // 10,
            "frame_index": ids % 10,
            "time_of_day": [("day", "dusk", "night")[i % 3] for i in range(n)],
            "weather": ["clear"] * n,
            "route": [("urban", "highway")[i % 2] for i in range(n)],
            "geo_cell": ["00-00"] * n,
            "segment": ["pool"] * n,
        }
    )


@pytest.mark.parametrize("where", ["local", "memory"])
def test_write_read_and_filter(tmp_path, where):
    base = str(tmp_path) if where == "local" else f"memory://alkit-test-{uuid.uuid4().hex}"
    url = storage.join(base, "pool.parquet")
    df = make_manifest()
    write_manifest(df, url)
    pd.testing.assert_frame_equal(read_manifest(url), df)
    night = read_manifest(url, filters={"time_of_day": ["night"]})
    assert night["frame_id"].tolist() == df.frame_id[df.time_of_day == "night"].tolist()
    assert set(night["time_of_day"]) == {"night"}
    both = read_manifest(url, filters={"time_of_day": ["night", "dusk"], "route": "urban"})
    expected = df[df.time_of_day.isin(["night", "dusk"]) & (df.route == "urban")]
    assert both["frame_id"].tolist() == expected["frame_id"].tolist()
    slim = read_manifest(url, filters={"time_of_day": ["day"]}, columns=["route"])
    assert list(slim.columns) == ["frame_id", "route"]


def test_filters_skip_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_mod, "ROW_GROUP_SIZE", 4)
    df = make_manifest(12).sort_values("time_of_day", kind="stable").reset_index(drop=True)
    url = str(tmp_path / "pool.parquet")
    write_manifest(df, url)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(url).num_row_groups == 3
    out = read_manifest(url, filters={"time_of_day": ["night"]})
    assert len(out) == 4 and set(out.time_of_day) == {"night"}


def test_validation_errors(tmp_path):
    url = str(tmp_path / "m.parquet")
    df = make_manifest()
    with pytest.raises(DataError, match="missing column 'frame_id'"):
        write_manifest(df.drop(columns="frame_id"), url)
    with pytest.raises(DataError, match="must be int64"):
        write_manifest(df.assign(frame_id=df.frame_id.astype(float)), url)
    dup = df.copy()
    dup.loc[[4, 7], "frame_id"] = [0, 3]
    with pytest.raises(DataError, match=r"duplicate frame ids 0, 3"):
        write_manifest(dup, url)
    with pytest.raises(DataError, match=r"missing metadata column\(s\) \['weather'\]"):
        write_manifest(df.drop(columns="weather"), url)
    assert not storage.exists(url)
    write_manifest(df.assign(frame_id=df.frame_id.astype("int32")), url)
    assert read_manifest(url)["frame_id"].dtype == np.int64
    with pytest.raises(DataError, match=r"unknown column\(s\) \['colour'\]"):
        read_manifest(url, filters={"colour": ["red"]})
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(str(tmp_path / "none.parquet"))


def test_meta_fields_match_world_frame():
    assert set(META_FIELDS) <= set(make_manifest().columns)
