"""APPEND and lineage: new immutable versions from labelled batches, traced back by the CLI."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from alkit import __version__
from alkit.annotate.oracle import OracleLabeller
from alkit.cli import main
from alkit.data import storage
from alkit.data.frames import Frame
from alkit.data.lineage import append_batch, code_version, lineage, lineage_info
from alkit.data.versions import DatasetVersion, list_versions, load_version, version_url
from alkit.errors import DataError, IntegrityError
from alkit.query.selection import SelectionRecord
from tests.fakeworld import FakeWorld

WORLD = FakeWorld(min_boxes=1)
ORACLE = OracleLabeller(WORLD)
ENSEMBLE = ("a" * 64, "b" * 64)


def selection(ids) -> SelectionRecord:
    return SelectionRecord("al", tuple(ids), params={"budget": len(ids)}, ensemble=ENSEMBLE)


@pytest.fixture
def store(tmp_path) -> tuple[str, DatasetVersion]:
    root = str(tmp_path / "store")
    initial = DatasetVersion.from_frames(
        [WORLD.frame(i) for i in range(5)], world=WORLD, info=lineage_info(params={"seed": 0})
    )
    initial.save(root)
    return root, initial


def two_rounds(root: str, initial: DatasetVersion) -> tuple[DatasetVersion, DatasetVersion]:
    sel1, sel2 = selection([10, 11, 12]), selection([20, 21])
    v1 = append_batch(root, initial, ORACLE.label(sel1.frame_ids), sel1, params={"round": 1})
    v2 = append_batch(root, v1.hash, ORACLE.label(sel2.frame_ids), sel2, params={"round": 2})
    return v1, v2


def test_append_batch_makes_a_new_version_with_lineage(store):
    root, initial = store
    sel = selection([10, 11, 12])
    batch = ORACLE.label(sel.frame_ids)
    v1 = append_batch(root, initial.hash, batch, sel, params={"round": 1, "k": 3})
    assert v1.parent == initial.hash and v1.frame_ids == [0, 1, 2, 3, 4, 10, 11, 12]
    assert len(v1.boxes) == len(initial.boxes) + batch.num_boxes
    info = v1.info
    assert info["parent"] == initial.hash and info["selection"] == sel.hash
    assert info["ensemble"] == list(ENSEMBLE) and info["params"] == {"round": 1, "k": 3}
    assert info["code"] == code_version() and info["created"]
    assert info["labelling"]["seconds"] == pytest.approx(batch.total_seconds)
    assert info["labelling"]["source"] == "oracle" and info["added_frames"] == 3
    assert load_version(root, v1.hash) == v1 and list_versions(root) == [initial.hash, v1.hash]
    assert load_version(root, initial.hash).frame_ids == [0, 1, 2, 3, 4]  # parent untouched


def test_code_version_is_a_commit_or_the_package_version():
    code = code_version()
    assert re.fullmatch(r"git:[0-9a-f]{40}(\+dirty)?", code) or code == f"alkit {__version__}"


def test_lineage_is_not_part_of_the_hash(store):
    root, initial = store
    batch = ORACLE.label([10, 11])
    a = append_batch(root, initial, batch, params={"round": 1})
    b = append_batch(root, initial, batch, ensemble_hashes=["c" * 64], params={"other": True})
    assert a.hash == b.hash and b.info["params"] == {"round": 1}  # the first record is kept


def test_appending_the_same_labels_twice_is_idempotent(store):
    root, initial = store
    batch = ORACLE.label([10, 11, 12])
    v1 = append_batch(root, initial, batch)
    versions = list_versions(root)
    again = append_batch(root, v1, batch)  # the frames are all in v1 already
    assert again.hash == v1.hash and list_versions(root) == versions
    assert again.frame_ids == v1.frame_ids  # no duplicate frames
    partly = append_batch(root, v1, ORACLE.label([12, 13]))
    assert partly.frame_ids == [*v1.frame_ids, 13] and partly.info["skipped_frames"] == 1


def test_relabelled_frame_is_refused_and_nothing_is_written(store):
    root, initial = store
    f = WORLD.frame(2)
    boxes = f.boxes.copy()
    boxes[0, 2] -= 1.0
    relabelled = Frame(2, f.image, boxes, f.labels, f.meta)
    batch = OracleLabeller(
        type("W", (), {"frame": lambda s, i: relabelled, "config": WORLD.config})()
    )
    before = list_versions(root)
    with pytest.raises(DataError, match=r"frame id\(s\) 2 .*'boxes'"):
        append_batch(root, initial, batch.label([2]))
    assert list_versions(root) == before


def test_frames_outside_the_selection_are_refused(store):
    root, initial = store
    before = list_versions(root)
    with pytest.raises(DataError, match=r"frame\(s\) 99 \(field 'frame_ids'\)"):
        append_batch(root, initial, ORACLE.label([10, 99]), selection([10, 11]))
    assert list_versions(root) == before


def test_versions_are_immutable_and_verified(store):
    root, initial = store
    v1, _ = two_rounds(root, initial)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.parent = None
    v1.frames.loc[0, "height"] = 1  # in-place edits are caught on save
    with pytest.raises(IntegrityError, match="modified in place"):
        v1.save(str(root) + "-other")
    url = storage.join(version_url(root, v1.hash), "boxes.parquet")
    boxes = storage.read_parquet(url)
    storage.atomic_write_parquet(boxes.assign(x=boxes.x + 1.0), url)
    with pytest.raises(IntegrityError, match="boxes.parquet"):
        load_version(root, v1.hash)
    with pytest.raises(IntegrityError, match="boxes.parquet"):
        lineage(root, v1.hash, verify=True)


def test_lineage_walks_back_to_the_initial_set(store):
    root, initial = store
    v1, v2 = two_rounds(root, initial)
    chain = lineage(root, v2.hash[:10])
    assert [v["hash"] for v in chain] == [v2.hash, v1.hash, initial.hash]
    assert [v["parent"] for v in chain] == [v1.hash, initial.hash, None]
    assert [v["frames"] for v in chain] == [10, 8, 5]
    assert chain[0]["selection"] == selection([20, 21]).hash
    assert chain[0]["ensemble"] == list(ENSEMBLE) and chain[2]["ensemble"] == []
    assert [v["params"] for v in chain] == [{"round": 2}, {"round": 1}, {"seed": 0}]
    assert all(v["code"] == code_version() and v["created"] for v in chain)
    assert chain[0]["boxes"] == len(v2.boxes)
    with pytest.raises(DataError, match="matches no version"):
        lineage(root, "ffffffff")


def test_lineage_reports_a_missing_parent(store, tmp_path):
    root, initial = store
    v1, v2 = two_rounds(root, initial)
    fs, path = storage.filesystem(version_url(root, v1.hash))
    fs.rm(path, recursive=True)
    with pytest.raises(IntegrityError, match=f"names parent {v1.hash}"):
        lineage(root, v2.hash)


def test_cli_prints_the_chain_of_two_rounds(store, capsys):
    root, initial = store
    v1, v2 = two_rounds(root, initial)
    assert main(["lineage", v2.hash, "--root", root, "--verify"]) == 0
    out = capsys.readouterr().out
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 3
    for block, version, parent in zip(
        blocks, [v2, v1, initial], [v1.hash, initial.hash, "- (initial set)"], strict=True
    ):
        keyed = [line for line in block.splitlines() if not line.startswith(" ")]
        lines = dict(re.split(r"\s+", line, maxsplit=1) for line in keyed)
        assert lines["version"] == version.hash and lines["parent"] == parent
        assert lines["frames"].split()[0] == str(len(version))
        assert lines["boxes"].split()[0] == str(len(version.boxes))
        assert lines["code"] == code_version() and lines["time"] == version.info["created"]
    assert f"selection  {selection([20, 21]).hash}" in blocks[0]
    assert f"ensemble   {ENSEMBLE[0]}\n           {ENSEMBLE[1]}" in blocks[0]
    assert "selection  -" in blocks[2] and '"round": 2' in blocks[0]


def test_cli_json_and_errors(store, capsys):
    root, initial = store
    v1, _ = two_rounds(root, initial)
    assert main(["lineage", v1.hash[:12], "--root", root, "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert [v["hash"] for v in chain] == [v1.hash, initial.hash]
    assert main(["lineage", "0123456789", "--root", root]) == 1
    assert "matches no version" in capsys.readouterr().err
