"""Atomic writes and reads on local paths and memory:// URLs."""

from __future__ import annotations

import uuid

import fsspec
import pandas as pd
import pytest

from alkit.data import storage
from alkit.errors import DataError


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path)
    else:
        url = f"memory://alkit-test-{uuid.uuid4().hex}"
        yield url
        fs, path = storage.filesystem(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def _names(url: str) -> list[str]:
    return storage.list_names(url)


def test_join_and_parent():
    assert storage.join("memory://a/", "/b/", "c.json") == "memory://a/b/c.json"
    assert storage.join("/tmp/x", "y") == "/tmp/x/y"
    assert storage.parent("memory://a/b/c.json") == "memory://a/b"
    assert storage.parent("/tmp/x/y.json") == "/tmp/x"


def test_bytes_text_json_round_trip(root):
    storage.atomic_write_bytes(storage.join(root, "d", "a.bin"), b"\x00\x01")
    storage.atomic_write_text(storage.join(root, "d", "b.txt"), "héllo")
    storage.atomic_write_json(storage.join(root, "d", "c.json"), {"b": 1, "a": [1.5, None]})
    assert storage.read_bytes(storage.join(root, "d", "a.bin")) == b"\x00\x01"
    assert storage.read_bytes(storage.join(root, "d", "b.txt")).decode() == "héllo"
    assert storage.read_json(storage.join(root, "d", "c.json")) == {"a": [1.5, None], "b": 1}
    text = storage.read_bytes(storage.join(root, "d", "c.json")).decode()
    assert text.index('"a"') < text.index('"b"')  # sorted keys
    assert storage.exists(storage.join(root, "d", "a.bin"))
    assert not storage.exists(storage.join(root, "d", "zzz"))
    assert _names(storage.join(root, "d")) == ["a.bin", "b.txt", "c.json"]  # no temp files


def test_overwrite_replaces_content(root):
    url = storage.join(root, "x.txt")
    storage.atomic_write_text(url, "one")
    storage.atomic_write_text(url, "two")
    assert storage.read_bytes(url) == b"two"
    assert _names(root) == ["x.txt"]


class Unserializable:
    pass


def test_failed_parquet_write_leaves_nothing(root):
    url = storage.join(root, "t", "table.parquet")
    good = pd.DataFrame({"frame_id": [1, 2], "v": ["a", "b"]})
    storage.atomic_write_parquet(good, url)
    bad = pd.DataFrame({"frame_id": [3], "v": [Unserializable()]})
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises
        storage.atomic_write_parquet(bad, url)
    assert _names(storage.join(root, "t")) == ["table.parquet"]  # temp file removed
    pd.testing.assert_frame_equal(storage.read_parquet(url), good)  # old content intact


def test_failure_mid_write_never_exposes_partial_file(root):
    url = storage.join(root, "half.bin")
    with pytest.raises(RuntimeError):
        with storage.atomic_open(url) as handle:
            handle.write(b"partial")
            raise RuntimeError("disk full")
    assert not storage.exists(url)
    assert _names(root) == []


def test_parquet_round_trip_with_filters(root):
    url = storage.join(root, "m.parquet")
    df = pd.DataFrame({"frame_id": [1, 2, 3], "tod": ["day", "night", "night"]})
    storage.atomic_write_parquet(df, url)
    out = storage.read_parquet(url, filters=[("tod", "in", ["night"])])
    assert out["frame_id"].tolist() == [2, 3]


def test_read_errors_name_the_file(root):
    missing = storage.join(root, "nope.json")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        storage.read_json(missing)
    bad = storage.join(root, "bad.json")
    storage.atomic_write_text(bad, '{"a": 1,\n "b": }')
    with pytest.raises(DataError, match=r"bad\.json.*line 2, column 7"):
        storage.read_json(bad)
    junk = storage.join(root, "junk.parquet")
    storage.atomic_write_bytes(junk, b"not parquet at all")
    with pytest.raises(DataError, match="junk.parquet"):
        storage.read_parquet(junk)


def test_memory_urls_are_real_fsspec_memory():
    url = f"memory://alkit-test-{uuid.uuid4().hex}/f.txt"
    storage.atomic_write_text(url, "x")
    with fsspec.open(url, "rb") as handle:
        assert handle.read() == b"x"
