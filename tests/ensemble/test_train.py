"""DetectorModule / DetectionDataModule / train_member on a tiny world (CPU), plus a real
2-process DDP (gloo) run behind the ``slow`` marker."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from alkit.data.datasets import CachedFrames
from alkit.data.versions import DatasetVersion
from alkit.detector.module import DetectorModule, TrainConfig, hflip_batch
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.train import member_device_plan, train_member
from alkit.errors import ConfigError, DataError
from alkit.sim import World, experiment_world

TINY = {"width": 8, "depth": 2, "stride": 4, "head_width": 8}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world() -> World:
    return World(experiment_world("quick", seed=0, initial=2, pool=1, test=1))


@pytest.fixture(scope="module")
def frame_ids() -> list[int]:
    return list(range(0, 200, 8))  # 25 frames from both sessions of `initial`


def quiet_trainer(**kwargs) -> L.Trainer:
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
    }
    return L.Trainer(**(defaults | kwargs))


@pytest.mark.slow
def test_fast_dev_run_fit_and_predict(world: World, frame_ids: list[int]) -> None:
    data = DetectionDataModule((world, frame_ids), batch_size=4, val_fraction=0.5, seed=1)
    module = DetectorModule(TINY, lr=1e-3, hflip=True)
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(module, datamodule=data)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert "val/total" in trainer.callback_metrics

    (pred,) = trainer.predict(module, datamodule=data)
    assert pred["probs"].shape == (4, 5, 24, 40)  # (B, C, H/4, W/4)
    assert 0 <= pred["probs"].min() and pred["probs"].max() <= 1
    assert pred["frame_id"].tolist() == data.dataset.frame_ids[:4]
    assert len(pred["detections"]) == 4
    assert all(d.boxes.shape[1] == 4 for d in pred["detections"])


def test_val_split_holds_out_whole_sessions(world: World, frame_ids: list[int]) -> None:
    data = DetectionDataModule((world, frame_ids), val_fraction=0.5, seed=0)
    data.setup("fit")
    session = world.config.frames_per_session
    train = {data.dataset.frame_ids[i] // session for i in data.train_set.indices}
    val = {data.dataset.frame_ids[i] // session for i in data.val_set.indices}
    assert train and val and not train & val
    assert len(data.train_set) + len(data.val_set) == len(frame_ids)
    with pytest.raises(ConfigError, match="val_fraction"):
        DetectionDataModule((world, frame_ids), val_fraction=1.0)
    with pytest.raises(DataError, match="no frames"):
        DetectionDataModule((world, []), batch_size=2).setup("fit")


def test_datamodule_over_a_dataset_version(world: World, frame_ids: list[int]) -> None:
    version = DatasetVersion.from_frames([world.frame(i) for i in frame_ids], world=world)
    data = DetectionDataModule(version, world=world, batch_size=4, val_fraction=0.5)
    data.setup("fit")
    assert len(data.train_set) + len(data.val_set) == len(frame_ids)
    sessions = version.frames.set_index("frame_id")["session_id"]
    train = {sessions[data.dataset.frame_ids[i]] for i in data.train_set.indices}
    val = {sessions[data.dataset.frame_ids[i]] for i in data.val_set.indices}
    assert train and val and not train & val
    assert data.describe()["kind"] == "version"
    assert data.describe()["version_hash"] == version.hash
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (4, 3, 96, 160)
    with pytest.raises(ConfigError, match="pass its world"):
        DetectionDataModule(version).setup("fit")


def test_cached_frames_match_the_generated_ones(world: World) -> None:
    ids = [3, 150, 7]
    cached = CachedFrames(DetectionDataModule((world, ids))._build())
    assert cached.images.dtype == torch.uint8 and cached.images.shape == (3, 3, 96, 160)
    for i, fid in enumerate(ids):
        frame = world.frame(fid)
        item = cached[i]
        assert item["frame_id"] == fid
        expected = torch.from_numpy(frame.image).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(item["image"], expected, rtol=0, atol=0)
        np.testing.assert_array_equal(item["boxes"].numpy(), frame.boxes)


def test_hflip_moves_boxes_with_the_pixels() -> None:
    images = torch.zeros(2, 3, 8, 12)
    images[:, :, 2:5, 1:4] = 1.0  # a 3x3 blob at x in [1, 4)
    boxes = [torch.tensor([[1.0, 2.0, 3.0, 3.0]]), torch.tensor([[1.0, 2.0, 3.0, 3.0]])]
    flipped, fboxes = hflip_batch(images, boxes, torch.tensor([True, False]))
    x, y, w, h = fboxes[0][0].long().tolist()
    assert (x, w) == (12 - 1 - 3, 3)
    assert flipped[0, :, y : y + h, x : x + w].min() == 1.0 and flipped[0].sum() == 27
    torch.testing.assert_close(flipped[1], images[1])
    torch.testing.assert_close(fboxes[1], boxes[1])


@pytest.mark.slow
def test_training_reduces_the_loss(world: World, tmp_path: Path) -> None:
    L.seed_everything(0, verbose=False)
    data = DetectionDataModule((world, [5, 60, 110, 160]), batch_size=4, cache=True)
    module = DetectorModule(TINY, lr=1e-2, warmup_steps=1, hflip=False)
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="fit")
    trainer = quiet_trainer(max_steps=30, logger=logger, log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        losses = [float(row["train/loss"]) for row in csv.DictReader(f) if row["train/loss"]]
    assert len(losses) == 30
    print(f"loss: first 5 steps {np.mean(losses[:5]):.3f}, last 5 {np.mean(losses[-5:]):.3f}")
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


@pytest.mark.slow
def test_checkpoint_carries_its_hyperparameters(
    world: World, frame_ids: list[int], tmp_path: Path
) -> None:
    data = DetectionDataModule((world, frame_ids[:8]), batch_size=4)
    config = TrainConfig(max_steps=2, lr=5e-3, size_weight=0.2, hflip=False)
    record = train_member(
        data, TINY, config, tmp_path, seed=3, accelerator="cpu", devices=1,
        enable_progress_bar=False,
    )  # fmt: skip
    assert record.seed == 3 and record.metrics["global_step"] == 2
    assert (tmp_path / "member_00.json").exists()
    assert (tmp_path / "logs" / "member_00" / "hparams.yaml").exists()

    loaded = DetectorModule.load_from_checkpoint(tmp_path / record.checkpoint)
    assert loaded.config.width == TINY["width"] and loaded.config.depth == TINY["depth"]
    assert loaded.hparams.lr == 5e-3 and loaded.hparams.size_weight == 0.2
    assert list(loaded.hparams.classes) == list(record.classes)
    state = torch.load(tmp_path / record.checkpoint, weights_only=False)["state_dict"]
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[name])


def test_train_config_round_trip_and_validation() -> None:
    config = TrainConfig(lr=1e-3, schedule="onecycle", precision="bf16-mixed")
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert "max_epochs" not in config.module_kwargs() and "lr" in config.module_kwargs()
    with pytest.raises(ConfigError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ConfigError, match="num_classes"):
        DetectorModule(TINY, classes=("car", "person"))


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "constant"])
def test_schedules_run(world: World, schedule: str) -> None:
    data = DetectionDataModule((world, [1, 2, 3, 4]), batch_size=2)
    module = DetectorModule(TINY, schedule=schedule, warmup_steps=1)
    quiet_trainer(max_steps=2).fit(module, datamodule=data)
    assert module.trainer.global_step == 2


def test_member_device_plan() -> None:
    assert member_device_plan(3, devices=2, accelerator="cpu") == [2, 2, 2]
    assert member_device_plan(3, member_devices=[[0], [1]]) == [[0], [1], [0]]
    assert member_device_plan(2, devices=1, accelerator="cpu", spread_members=True) == [1, 1]
    with pytest.raises(ConfigError, match="not both"):
        member_device_plan(2, member_devices=[[0]], spread_members=True)


DDP_SCRIPT = """
import json, os, sys

import lightning as L
import torch

from alkit.sim import World, experiment_world
from alkit.ensemble.train import DetectionDataModule, TrainConfig, train_ensemble


class SaveRank(L.Callback):
    members = 0

    def __init__(self, out):
        self.out = out

    def on_train_start(self, trainer, module):
        self.start = {k: v.detach().cpu().clone() for k, v in module.named_parameters()}

    def on_train_end(self, trainer, module):
        info = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "backend": torch.distributed.get_backend(),
            "pid": os.getpid(),
            "step": trainer.global_step,
        }
        params = {k: v.detach().cpu() for k, v in module.named_parameters()}
        state = {"info": info, "params": params, "start": self.start}
        torch.save(state, f"{self.out}/m{self.members}_rank{trainer.global_rank}.pt")
        self.members += 1


if __name__ == "__main__":
    out = sys.argv[1]
    world = World(experiment_world("quick", seed=0, initial=2, pool=1, test=1))
    data = DetectionDataModule((world, list(range(0, 200, 10))), batch_size=2, cache=True)
    manifest = train_ensemble(
        2, data, {"width": 4, "depth": 2, "stride": 4, "head_width": 4},
        TrainConfig(max_steps=3, lr=1e-2, warmup_steps=1), out,
        accelerator="cpu", devices=2, strategy="ddp", num_nodes=1,
        callbacks=[SaveRank(out)], enable_progress_bar=False,
    )
    rank = int(os.environ.get("LOCAL_RANK", 0))
    with open(f"{out}/result{rank}.json", "w") as f:
        json.dump({"manifest": str(manifest)}, f)
    # as a torchrun/SLURM script should: without it gloo's threads may abort the exit
    torch.distributed.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree(tmp_path: Path) -> None:
    """A 2-member ensemble, each member trained with strategy="ddp" on 2 CPU processes as
    torchrun/SLURM users run it: Lightning re-launches this script for rank 1 (a real second
    process, gloo backend); both ranks end every member with identical weights."""
    script = tmp_path / "ddp_ensemble.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]

    for member in (0, 1):
        ranks = [torch.load(tmp_path / f"m{member}_rank{r}.pt") for r in (0, 1)]
        infos = [r["info"] for r in ranks]
        assert [i["rank"] for i in infos] == [0, 1]
        assert all(i["world_size"] == 2 and i["backend"] == "gloo" for i in infos)
        assert infos[0]["pid"] != infos[1]["pid"]
        assert infos[0]["step"] == infos[1]["step"] == 3
        moved = False
        for name, value in ranks[0]["params"].items():
            torch.testing.assert_close(value, ranks[1]["params"][name], rtol=0, atol=0)
            moved |= not torch.equal(value, ranks[0]["start"][name])
        assert moved  # the weights did train

    results = [json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1] == {"manifest": str(tmp_path / "ensemble.json")}
    manifest = json.loads((tmp_path / "ensemble.json").read_text())
    assert [m["seed"] for m in manifest["members"]] == [0, 1]
    members = torch.load(tmp_path / "member_01.ckpt", weights_only=False)["state_dict"]
    params = torch.load(tmp_path / "m1_rank0.pt")["params"]
    for name, value in params.items():
        torch.testing.assert_close(members[name], value, rtol=0, atol=0)
