"""Retraining's sampling: the natural share (every frame of the union alike), new_fraction as
before, and at least one epoch of the union; no training (the sampler's draws are counted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from alkit.ensemble import retrain as retrain_module
from alkit.ensemble.retrain import RetrainConfig, mixed_loader, retrain
from alkit.errors import ConfigError


class Frames(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def _draws(loader) -> np.ndarray:
    return np.asarray(list(loader.sampler))  # indices into old + new


@pytest.mark.parametrize("natural", [None, "natural"])
def test_natural_share_draws_every_frame_of_the_union_alike(natural):
    old, new, samples = Frames(900), Frames(100), 50_000
    draws = _draws(mixed_loader(old, new, samples, 16, natural, seed=0))
    share = (draws >= 900).mean()
    # binomial: the new frames' share of the draws is 100 / 1,000, sd sqrt(0.09 / 50,000)
    assert share == pytest.approx(0.1, abs=4 * np.sqrt(0.09 / samples))
    per_frame = np.bincount(draws, minlength=1000)  # each frame: Poisson(50) draws
    assert per_frame[900:].mean() / per_frame[:900].mean() == pytest.approx(1.0, abs=0.05)
    assert per_frame.min() > 0


def test_new_fraction_is_unchanged_bit_for_bit():
    old, new = Frames(900), Frames(100)
    got = _draws(mixed_loader(old, new, 4000, 16, 0.5, seed=3))
    # the weights as they were before the natural share existed
    weights = torch.tensor([0.5 / 900] * 900 + [0.5 / 100] * 100)
    sampler = WeightedRandomSampler(weights, 4000, replacement=True,
                                    generator=torch.Generator().manual_seed(3))  # fmt: skip
    np.testing.assert_array_equal(got, np.asarray(list(sampler)))
    assert (got >= 900).mean() == pytest.approx(0.5, abs=0.03)  # 20x the weight per new frame


def test_at_least_one_epoch_of_the_union(monkeypatch):
    seen = {}

    def fake_fine_tune(reference, old, new, train, steps, seed, new_fraction, batch_size,
                       progress=True):  # fmt: skip
        seen.update(steps=steps, new_fraction=new_fraction)

    monkeypatch.setattr(retrain_module, "fine_tune", fake_fine_tune)
    reference = object()
    config = RetrainConfig(steps=10, new_fraction=None, min_epochs=1.0)
    assert config.steps_for(1100, 16) == 69  # ceil(1,100 / 16)
    assert RetrainConfig(steps=100, min_epochs=1.0).steps_for(1100, 16) == 100
    assert RetrainConfig(steps=10).steps_for(1100, 16) == 10  # the default: steps as given
    retrain(reference, Frames(1000), Frames(100), None, config, seed=0, batch_size=16)
    assert seen == {"steps": 69, "new_fraction": None}
    # REFERENCE's same-length control: no new frames, the arms' union size
    retrain(reference, Frames(1000), Frames(0), None, config, seed=0, union_size=1100)
    assert seen["steps"] == 69
    retrain(reference, Frames(1000), Frames(0), None, config, seed=0)
    assert seen["steps"] == 63  # ceil(1,000 / 16)


def test_defaults_and_bad_values():
    assert RetrainConfig().new_fraction == 0.5 and RetrainConfig().min_epochs is None
    for bad in (0.0, 1.5, "half"):
        with pytest.raises(ConfigError, match="new_fraction"):
            RetrainConfig(new_fraction=bad)
    with pytest.raises(ConfigError, match="min_epochs"):
        RetrainConfig(min_epochs=0)
