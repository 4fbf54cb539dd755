"""train_ensemble -> ensemble.json -> load_ensemble: hashes, architecture checks, resume,
forward_probs, predict_coco / evaluate_model."""

from __future__ import annotations

import json
import shutil
from copy import deepcopy as copy_module
from pathlib import Path

import pytest
import torch

from alkit.data.classes import CLASSES
from alkit.data.datasets import VirtualFrames
from alkit.detector.module import DetectorModule, TrainConfig
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.store import (
    ENSEMBLE_RECORD,
    Ensemble,
    MemberRecord,
    load_ensemble,
    read_member_record,
    weights_sha256,
    write_ensemble_record,
)
from alkit.ensemble.train import train_ensemble
from alkit.errors import ConfigError, IntegrityError
from alkit.evaluate.predict import evaluate_model, predict_coco
from alkit.sim import World, experiment_world

TINY = {"width": 8, "depth": 2, "stride": 4, "head_width": 8}
STEPS = TrainConfig(max_steps=2, warmup_steps=1)
QUIET = {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False}


@pytest.fixture(scope="module")
def world() -> World:
    return World(experiment_world("quick", seed=0, initial=2, pool=1, test=1))


@pytest.fixture(scope="module")
def data(world: World) -> DetectionDataModule:
    return DetectionDataModule((world, list(range(0, 200, 10))), batch_size=4, cache=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: DetectionDataModule) -> Path:
    """A 2-member ensemble folder (train it once per module; copy before tampering)."""
    out = tmp_path_factory.mktemp("ensemble")
    manifest = train_ensemble(2, data, TINY, STEPS, out, base_seed=10, **QUIET)
    assert manifest == out / ENSEMBLE_RECORD
    return out


def test_manifest_records_every_member(trained: Path, world: World) -> None:
    manifest = json.loads((trained / ENSEMBLE_RECORD).read_text())
    assert manifest["n_members"] == 2 and manifest["classes"] == list(CLASSES)
    assert manifest["model_config"]["width"] == TINY["width"]
    assert manifest["train_config"]["max_steps"] == 2
    assert manifest["data"]["kind"] == "world"
    assert manifest["data"]["world_hash"] == world.config.hash
    assert manifest["data"]["n_frames"] == 20
    members = manifest["members"]
    assert [m["seed"] for m in members] == [10, 11]
    assert [m["checkpoint"] for m in members] == ["member_00.ckpt", "member_01.ckpt"]
    assert all(len(m["sha256"]) == 64 for m in members)
    assert members[0]["sha256"] != members[1]["sha256"]
    for m in members:  # differ only in seed (and what the seed produced)
        for key in ("model_config", "train_config", "data", "classes"):
            assert m[key] == members[0][key]


def test_load_ensemble_round_trip(trained: Path, data: DetectionDataModule) -> None:
    ensemble = load_ensemble(trained / ENSEMBLE_RECORD)
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 2
    assert ensemble.seeds == (10, 11) and ensemble.classes == CLASSES
    assert not any(m.training for m in ensemble.members)
    images = torch.stack([data.dataset[i]["image"] for i in range(3)])  # (3, 3, 96, 160)
    probs = ensemble.forward_probs(images)
    assert probs.shape == (2, 3, 5, 24, 40)  # (M, B, C, h, w)
    assert probs.dtype == torch.float32 and 0 <= probs.min() and probs.max() <= 1
    assert not torch.equal(probs[0], probs[1])  # different seeds, different members

    module = DetectorModule.load_from_checkpoint(trained / "member_01.ckpt")
    with torch.no_grad():
        single = torch.sigmoid(module.eval()(images).heatmap_logits)  # (3, 5, 24, 40)
    torch.testing.assert_close(probs[1], single)


def test_tampered_checkpoint_raises_integrity_error(trained: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(trained, tmp_path / "copy")
    path = folder / "member_01.ckpt"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match="member_01.ckpt"):
        load_ensemble(folder / ENSEMBLE_RECORD)
    path.unlink()
    with pytest.raises(IntegrityError, match="member_01.ckpt.*missing"):
        load_ensemble(folder / ENSEMBLE_RECORD)


@pytest.mark.slow
def test_members_with_different_width_are_refused(
    trained: Path, data: DetectionDataModule, tmp_path: Path
) -> None:
    other = tmp_path / "narrow"
    train_ensemble(1, data, {**TINY, "width": 4}, STEPS, other, **QUIET)
    narrow = read_member_record(other, 0)
    assert narrow is not None and narrow.model_config["width"] == 4

    folder = shutil.copytree(trained, tmp_path / "mixed")
    manifest = json.loads((folder / ENSEMBLE_RECORD).read_text())
    manifest["members"][1] = narrow.to_dict() | {
        "index": 1,
        "checkpoint": str(other / narrow.checkpoint),  # absolute paths are allowed
        "model_config": manifest["members"][0]["model_config"],  # the manifest even lies
    }
    (folder / ENSEMBLE_RECORD).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"member 1 .*'width'"):
        load_ensemble(folder / ENSEMBLE_RECORD)

    wide = read_member_record(trained, 0)
    with pytest.raises(ConfigError, match=r"member 1 .*'width'"):
        write_ensemble_record(
            tmp_path, [wide, MemberRecord.from_dict(narrow.to_dict() | {"index": 1})]
        )


def test_resume_skips_finished_members(trained: Path, tmp_path: Path, data) -> None:
    folder = shutil.copytree(trained, tmp_path / "resume")
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("member_*.ckpt")}
    (folder / ENSEMBLE_RECORD).unlink()
    assert train_ensemble(2, data, TINY, STEPS, folder, base_seed=10, **QUIET) is not None
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("member_*.ckpt")} == before
    with pytest.raises(ConfigError, match="different seed"):
        train_ensemble(2, data, TINY, STEPS, folder, base_seed=0, **QUIET)


@pytest.mark.slow
def test_partial_ensemble_waits_for_its_members(tmp_path: Path, data) -> None:
    assert train_ensemble(2, data, TINY, STEPS, tmp_path, members=[1], **QUIET) is None
    assert not (tmp_path / ENSEMBLE_RECORD).exists()
    assert read_member_record(tmp_path, 1).seed == 1
    manifest = train_ensemble(2, data, TINY, STEPS, tmp_path, members=[0], **QUIET)
    assert manifest is not None and len(load_ensemble(manifest)) == 2
    with pytest.raises(ConfigError, match="outside"):
        train_ensemble(2, data, TINY, STEPS, tmp_path, members=[2], **QUIET)


def test_predict_and_evaluate(trained: Path, world: World) -> None:
    ensemble = load_ensemble(trained / ENSEMBLE_RECORD)
    frames = VirtualFrames(world, [300, 310, 320])
    module = DetectorModule.load_from_checkpoint(trained / "member_00.ckpt")
    for model in (module, module.model, ensemble):
        results = predict_coco(model, frames, batch_size=2, threshold=0.0, k=7)
        assert len(results) == 3 * 7
        assert {r["image_id"] for r in results} == {300, 310, 320}
        assert all(1 <= r["category_id"] <= 5 and 0 <= r["score"] <= 1 for r in results)
        assert all(len(r["bbox"]) == 4 for r in results)
    result = evaluate_model(module, frames, batch_size=2)
    n_gt = sum(len(world.frame(i).boxes) for i in (300, 310, 320))
    assert int(result.table["n_gt"].sum()) == n_gt
    assert list(result.table.index) == list(CLASSES)
    with pytest.raises(ConfigError, match="expected a UNetDetector"):
        predict_coco(torch.nn.Linear(2, 2), frames)


def test_weights_hash_is_the_same_for_a_checkpoint_and_its_model_in_memory(trained: Path):
    ensemble = load_ensemble(trained / ENSEMBLE_RECORD)
    module = DetectorModule.load_from_checkpoint(trained / "member_00.ckpt", weights_only=False)
    first = weights_sha256(ensemble.members[0])
    assert weights_sha256(module.model) == first
    assert weights_sha256(ensemble.members[1]) != first  # another seed, other weights
    copy = copy_module(module.model)
    with torch.no_grad():
        next(copy.parameters()).add_(1.0)
    assert weights_sha256(copy) != first and weights_sha256(module.model) == first
