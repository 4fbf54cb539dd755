"""Pool scoring: exact scores, shards, resume after a crash, DDP equals one process, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from alkit.detector.network import DetectorConfig, DetectorOutput, UNetDetector
from alkit.errors import ConfigError, DataError
from alkit.query.acquisition import frame_scores
from alkit.query.score import BatchesAhead, read_scores, score_pool
from alkit.sim import World, experiment_world
from alkit.sim.experiment import world_pool
from tests.query.test_acquisition import reference_mi

TINY = DetectorConfig(width=4, depth=2, stride=4, head_width=8)


def tiny_members(n: int = 3) -> list[nn.Module]:
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        members.append(UNetDetector(TINY).eval())
    return members


@pytest.fixture(scope="module")
def world() -> World:
    return World(experiment_world("quick", seed=0, initial=1, pool=2, test=1))


@pytest.fixture(scope="module")
def pool_ids(world) -> list[int]:
    return list(world.segment_frame_ids("pool"))[:150]


class CrashAfter(nn.Module):
    """A member that works for ``calls`` batches, then dies like a killed process."""

    def __init__(self, inner: nn.Module, calls: int):
        super().__init__()
        self.inner, self.calls = inner, calls

    def forward(self, x):
        self.calls -= 1
        if self.calls < 0:
            raise RuntimeError("simulated crash")
        return self.inner(x)


class NanMember(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x)
        logits = out.heatmap_logits.clone()
        logits[1, 0, 0, 0] = float("nan")  # second frame of each batch
        return DetectorOutput(logits, out.size, out.offset)


def run(members, world, ids, out, **kw):
    return score_pool(members, world, ids, str(out), batch_size=16, shard_size=40,
                      progress=False, **kw)  # fmt: skip


def test_scores_are_the_ensemble_mutual_information(world, pool_ids, tmp_path):
    members = tiny_members()
    result = run(members, world, pool_ids, tmp_path / "s")
    assert result.n_shards == 4 and result.written == (0, 1, 2, 3)
    table = read_scores(str(tmp_path / "s"))
    assert table.frame_id.tolist() == sorted(pool_ids)
    some = pool_ids[:5]
    images = torch.stack(
        [torch.from_numpy(world.frame(i).image).permute(2, 0, 1).float() / 255 for i in some]
    )
    with torch.inference_mode():  # each member's own heatmaps, then the formula in float64
        probs = torch.stack([torch.sigmoid(m(images).heatmap_logits).double() for m in members])
    expect = reference_mi(probs).mean(dim=(-2, -1))  # [M, 5, C, h, w] -> [5, C]
    got = table.set_index("frame_id").loc[some, ["car", "bicycle", "person"]].to_numpy()
    np.testing.assert_allclose(got, expect[:, :3].numpy(), rtol=1e-4, atol=1e-6)
    assert (table.drop(columns="frame_id").to_numpy() >= 0).all()


def test_resume_after_crash_equals_uninterrupted_run(world, pool_ids, tmp_path):
    members = tiny_members()
    run(members, world, pool_ids, tmp_path / "clean")
    crashing = [CrashAfter(members[0], calls=4), *members[1:]]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(crashing, world, pool_ids, tmp_path / "resumed")
    partial = sorted(p.name for p in (tmp_path / "resumed").glob("shard-*"))
    assert partial == ["shard-000000.parquet"]  # 4 batches of 16 = 64 frames: shard 0 done, 1 half
    assert not list((tmp_path / "resumed").glob("*.tmp-*"))
    again = run(members, world, pool_ids, tmp_path / "resumed")
    assert again.skipped == (0,) and again.written == (1, 2, 3)
    pd.testing.assert_frame_equal(
        read_scores(str(tmp_path / "resumed")), read_scores(str(tmp_path / "clean"))
    )
    third = run(members, world, pool_ids, tmp_path / "resumed")
    assert third.written == () and third.skipped == (0, 1, 2, 3)


def test_memory_filesystem_and_metadata_filter(world, tmp_path):
    pool = world_pool(world)
    first = pool.metadata.iloc[0]  # filter on its metadata: at least this frame passes
    chosen = pool.where({"session_id": [int(first.session_id)]}).every(3)
    assert 0 < len(chosen) < len(pool) and set(chosen.metadata.session_id) == {first.session_id}
    url = "memory://alkit-score-test/one-session"
    run(tiny_members(2), world, chosen.frame_ids, url)
    assert read_scores(url).frame_id.tolist() == sorted(chosen.frame_ids)


def test_another_run_in_the_same_folder_is_refused(world, pool_ids, tmp_path):
    run(tiny_members(2), world, pool_ids[:40], tmp_path / "s")
    with pytest.raises(ConfigError, match="another run"):
        run(tiny_members(2), world, pool_ids[:80], tmp_path / "s")


def test_bad_input(world, pool_ids, tmp_path):
    members = tiny_members(2)
    with pytest.raises(DataError, match="empty"):
        run(members, world, [], tmp_path / "a")
    with pytest.raises(DataError, match="duplicate"):
        run(members, world, [pool_ids[0], pool_ids[0]], tmp_path / "b")
    with pytest.raises(DataError, match=f"frame {pool_ids[1]}"):
        run([NanMember(members[0]), members[1]], world, pool_ids[:16], tmp_path / "c")
    with pytest.raises(ConfigError, match="4 were named"):
        run(members, world, pool_ids[:16], tmp_path / "d", classes=["a", "b", "c", "d"])


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from alkit.detector.network import DetectorConfig, UNetDetector
    from alkit.query.score import score_pool
    from alkit.sim import World, experiment_world

    world = World(experiment_world("quick", seed=0, initial=1, pool=2, test=1))
    ids = list(world.segment_frame_ids("pool"))[:150]
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(UNetDetector(DetectorConfig(width=4, depth=2, stride=4, head_width=8)))
    score_pool(members, world, ids, sys.argv[1], batch_size=16, shard_size=40,
               accelerator="cpu", devices=int(sys.argv[2]), strategy=sys.argv[3],
               progress=False)
    """
)


@pytest.mark.slow
def test_two_process_ddp_scoring_equals_one_process(tmp_path: Path):
    script = tmp_path / "score_ddp.py"
    script.write_text(DDP_SCRIPT)
    # One thread per process in both runs: Lightning gives each DDP rank cores / ranks threads,
    # and a different thread count changes float summation order, which can flip near-tied
    # peaks of the box-based score. Batches are shard-aligned, so the rest is identical.
    env = {**os.environ, "MASTER_PORT": str(29500 + os.getpid() % 1000), "OMP_NUM_THREADS": "1"}
    for name, devices, strategy in (("one", 1, "auto"), ("two", 2, "ddp")):
        subprocess.run(
            [sys.executable, str(script), str(tmp_path / name), str(devices), strategy],
            check=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
    two = sorted(p.name for p in (tmp_path / "two").glob("shard-*"))
    assert two == [f"shard-{i:06d}.parquet" for i in range(4)]
    pd.testing.assert_frame_equal(
        read_scores(str(tmp_path / "two")), read_scores(str(tmp_path / "one")), atol=1e-6
    )


def test_mc_dropout_scores_one_model(world, pool_ids, tmp_path):
    from alkit.query.score import MCDropout

    torch.manual_seed(0)
    model = UNetDetector(DetectorConfig(width=4, depth=2, stride=4, head_width=8, dropout=0.3))
    with pytest.raises(ConfigError, match="dropout"):
        MCDropout(tiny_members(1)[0])
    mc = MCDropout(model.eval(), passes=4)
    run(mc, world, pool_ids[:40], tmp_path / "a")
    run(mc, world, pool_ids[:40], tmp_path / "b")
    a, b = read_scores(str(tmp_path / "a")), read_scores(str(tmp_path / "b"))
    pd.testing.assert_frame_equal(a, b)  # seeded masks: reproducible
    assert (a["person"] > 0).any()  # passes disagree, so MI is positive
    assert {"person__boxes", "person__max", "person__entropy"} <= set(a.columns)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_scoring_equals_cpu_scoring(world, pool_ids, tmp_path):
    members = tiny_members()
    run(members, world, pool_ids, tmp_path / "cpu", accelerator="cpu")
    run(members, world, pool_ids, tmp_path / "gpu", accelerator="gpu", devices=1)
    cpu, gpu = read_scores(str(tmp_path / "cpu")), read_scores(str(tmp_path / "gpu"))
    assert gpu.frame_id.tolist() == cpu.frame_id.tolist()
    scores = cpu.columns.drop("frame_id")
    np.testing.assert_allclose(gpu[scores].to_numpy(), cpu[scores].to_numpy(), atol=1e-5)


def test_shards_hold_peak_scores_and_pooled_decoder_features(world, pool_ids, tmp_path):
    import torch.nn.functional as F

    from alkit.query.acquisition import detection_peaks, mutual_information
    from alkit.query.kcenter import feature_columns

    members = tiny_members()
    run(members, world, pool_ids[:40], tmp_path / "s")
    table = read_scores(str(tmp_path / "s")).set_index("frame_id")
    some = pool_ids[:4]
    images = torch.stack(
        [torch.from_numpy(world.frame(i).image).permute(2, 0, 1).float() / 255 for i in some]
    )
    # the reference, in float64 on the members as trained (no BatchNorm folding): the decoder
    # climbed by hand, its global average pool, the mean over members
    feats, logits, log_h = [], [], []
    with torch.no_grad():
        for m in members:
            m64 = m.double()
            x = m64.stem(images.double())
            skips = [x]
            for block in m64.down:
                x = block(F.max_pool2d(x, 2))
                skips.append(x)
            for block, level in zip(m64.up, reversed(range(m64.out_level, TINY.depth)),
                                    strict=True):  # fmt: skip
                x = block(x, skips[level])
            feats.append(x.mean(dim=(2, 3)))  # [B, F]
            out = m64(images.double())
            logits.append(out.heatmap_logits)
            log_h.append(out.size[:, 1])
            m.float()
    want_feats = torch.stack(feats).mean(0)  # [B, F]
    columns = feature_columns(table.reset_index())
    assert len(columns) == TINY.width * 2 ** (TINY.stride.bit_length() - 1)  # 16 floats
    got = table.loc[some, columns].to_numpy()
    np.testing.assert_allclose(got, want_feats.numpy(), rtol=1e-4, atol=1e-6)
    # heights: continuous, so against the float64 reference; the peak sum: 3x3 peaks of a
    # near-flat untrained map flip with the last bit, so on the scorer's own maps (the
    # reduction itself has its known answer in test_acquisition)
    from alkit.query.score import EnsembleProbabilities

    batch = torch.stack(  # the scorer's first batch: the same rounding as in the shard
        [torch.from_numpy(world.frame(i).image).permute(2, 0, 1).float() / 255
         for i in pool_ids[:16]]
    )  # fmt: skip
    maps = EnsembleProbabilities(members).maps(batch)
    maps = maps._replace(probs=maps.probs[:, :4], heights=maps.heights[:4])
    want_h = torch.stack(log_h).mean(0).exp() * TINY.stride  # [B, h, w] px
    np.testing.assert_allclose(maps.heights.numpy(), want_h.numpy(), rtol=1e-4)
    peaks = detection_peaks(maps.probs.mean(0), maps.heights)
    want = frame_scores(mutual_information(maps.probs), "peaks", peaks=peaks)  # [B, C]
    got = table.loc[some, ["car__peaks", "bicycle__peaks", "person__peaks"]].to_numpy()
    np.testing.assert_allclose(got, want[:, :3].numpy(), rtol=1e-6)
    assert (got > 0).all()  # an untrained net's map has peaks over 0.05 everywhere
    assert torch.equal(maps.probs, EnsembleProbabilities(members)(batch)[:, :4])  # forward's


def test_a_run_begun_before_the_peak_column_resumes(world, pool_ids, tmp_path):
    import json

    out = tmp_path / "s"
    run(tiny_members(2), world, pool_ids[:40], out)
    plan = json.loads((out / "_plan.json").read_text())
    plan["columns"] = [c for c in plan["columns"] if not c.endswith("__peaks")]  # the old plan
    (out / "_plan.json").write_text(json.dumps(plan))
    again = run(tiny_members(2), world, pool_ids[:40], out)
    assert again.skipped == (0,)
    plan["classes"] = ["person"]  # but another run is still refused
    (out / "_plan.json").write_text(json.dumps(plan))
    with pytest.raises(ConfigError, match="another run"):
        run(tiny_members(2), world, pool_ids[:40], out)


def test_batches_ahead_yields_the_loaders_batches_in_order_and_its_errors():
    class Frames(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            if i == 7:
                raise DataError("frame 7: cannot decode")
            return torch.tensor([i])

    good = DataLoader(list(range(7)), batch_size=3)
    assert [b.tolist() for b in BatchesAhead(good)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchesAhead(good)) == 3
    batches = iter(BatchesAhead(DataLoader(Frames(), batch_size=2)))
    assert [next(batches).tolist() for _ in range(3)] == [[[0], [1]], [[2], [3]], [[4], [5]]]
    with pytest.raises(DataError, match="frame 7"):
        next(batches)
    early = iter(BatchesAhead(DataLoader(list(range(100)), batch_size=1), depth=1))
    assert next(early).tolist() == [0]
    early.close()  # a consumer that stops early: the thread ends, nothing hangs
    for thread in threading.enumerate():
        if thread.name == "alkit-batches-ahead":
            thread.join(timeout=2)
            assert not thread.is_alive()
