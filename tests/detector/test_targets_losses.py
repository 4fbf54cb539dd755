"""encode_targets / collate_targets and the CenterNet losses."""

from __future__ import annotations

import pytest
import torch

from alkit.detector.losses import detection_loss, focal_loss_from_logits, regression_l1
from alkit.detector.network import DetectorConfig, DetectorOutput, UNetDetector
from alkit.detector.targets import collate_targets, encode_targets, gaussian_radius
from alkit.errors import ConfigError, DataError

BOXES = torch.tensor([[10.0, 12.0, 40.0, 30.0], [100.0, 40.0, 8.0, 20.0], [60.0, 60.0, 3.0, 3.0]])
LABELS = torch.tensor([0, 2, 3])


def test_heatmap_peaks_mask_and_regression_targets() -> None:
    t = encode_targets(BOXES, LABELS, num_classes=5, image_hw=(96, 160), stride=4)
    assert t.heatmap.shape == (5, 24, 40) and t.mask.shape == (24, 40)
    assert t.size.shape == t.offset.shape == (2, 24, 40)
    assert t.heatmap.min() >= 0 and t.heatmap.max() <= 1
    assert int(t.mask.sum()) == len(BOXES)
    centres = (BOXES[:, :2] + BOXES[:, 2:] / 2) / 4  # (N, 2) cells
    for (cx, cy), label in zip(centres.tolist(), LABELS.tolist(), strict=True):
        i, j = int(cx), int(cy)
        assert t.mask[j, i]
        assert t.heatmap[label, j, i] == 1.0
        assert t.offset[:, j, i].tolist() == pytest.approx([cx - i, cy - j])
    assert t.heatmap[1].sum() == 0 and t.heatmap[4].sum() == 0  # no bicycles, no signs
    # Exactly one cell per box is 1, and the big car has a spread-out splat.
    assert int((t.heatmap == 1).sum()) == len(BOXES)
    assert int((t.heatmap[0] > 0).sum()) > 9
    torch.testing.assert_close(t.size[:, 6, 7], torch.tensor([40.0, 30.0]).div(4).log())


def test_gaussian_radius_matches_centernet_values() -> None:
    # Reference values from CenterNet's numpy gaussian_radius((h, w), min_overlap=0.7).
    r = gaussian_radius(torch.tensor([10.0, 0.75]), torch.tensor([20.0, 0.75]))
    assert r[0].item() == pytest.approx(3.677925, abs=1e-4)
    assert r[1].item() == pytest.approx(0.204990, abs=1e-5)


def test_boxes_outside_or_degenerate_are_skipped_and_bad_input_raises() -> None:
    boxes = torch.tensor([[150.0, 10.0, 30.0, 10.0], [5.0, 5.0, 0.0, 4.0], [5.0, 5.0, 4.0, 4.0]])
    t = encode_targets(boxes, torch.tensor([0, 0, 1]), 5, (96, 160), 4)
    assert int(t.mask.sum()) == 1 and t.heatmap[0].sum() == 0
    empty = encode_targets(torch.zeros(0, 4), torch.zeros(0), 5, (96, 160), 4)
    assert empty.heatmap.sum() == 0 and not empty.mask.any()
    with pytest.raises(DataError, match="outside \\[0, 5\\)"):
        encode_targets(BOXES, torch.tensor([0, 5, 1]), 5, (96, 160), 4)
    with pytest.raises(DataError, match="non-finite"):
        encode_targets(torch.tensor([[1.0, float("nan"), 2.0, 2.0]]), [0], 5, (96, 160), 4)
    with pytest.raises(ConfigError, match="not a multiple of the output stride"):
        encode_targets(BOXES, LABELS, 5, (95, 160), 4)
    with pytest.raises(DataError, match="image 1 of the batch"):
        collate_targets([BOXES, BOXES], [LABELS, LABELS + 9], 5, (96, 160), 4)


def test_collate_stacks_a_batch() -> None:
    t = collate_targets([BOXES, torch.zeros(0, 4)], [LABELS, torch.zeros(0)], 5, (96, 160), 8)
    assert t.heatmap.shape == (2, 5, 12, 20) and t.mask.shape == (2, 12, 20)
    assert int(t.mask[0].sum()) == 3 and int(t.mask[1].sum()) == 0


@pytest.mark.parametrize("scale", [0.0, 1.0, 1e4])
def test_focal_loss_finite_on_empty_images_and_extreme_logits(scale: float) -> None:
    target = encode_targets(BOXES, LABELS, 5, (96, 160), 4).heatmap[None]  # (1, C, h, w)
    for heat in (target, torch.zeros_like(target)):
        for sign in (1.0, -1.0):
            logits = torch.full_like(heat, sign * scale).requires_grad_()
            loss = focal_loss_from_logits(logits, heat)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert focal_loss_from_logits(torch.full_like(target, -1e4), torch.zeros_like(target)) == 0


def test_losses_decrease_toward_targets() -> None:
    t = collate_targets([BOXES], [LABELS], 5, (96, 160), 4)
    perfect = torch.logit(t.heatmap.clamp(1e-4, 1 - 1e-4))
    far = torch.zeros_like(perfect)
    values = [focal_loss_from_logits(far + a * (perfect - far), t.heatmap) for a in (0, 0.5, 1)]
    assert values[0] > values[1] > values[2]
    assert regression_l1(t.size + 1, t.size, t.mask) == pytest.approx(2.0)  # 2 channels
    assert regression_l1(t.size, t.size, t.mask) == 0
    # Garbage outside the mask is ignored (no NaN leaks through).
    assert regression_l1(t.size.masked_fill(~t.mask[:, None], float("nan")), t.size, t.mask) == 0
    out = DetectorOutput(perfect, t.size, t.offset)
    parts = detection_loss(out, t)
    assert set(parts) == {"total", "heatmap", "size", "offset"}
    assert parts["size"] == 0 and parts["offset"] == 0
    assert parts["total"] == pytest.approx(parts["heatmap"].item())


@pytest.mark.slow
def test_tiny_overfit_one_image() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 64) * 0.1
    boxes = torch.tensor([[4.0, 6.0, 16.0, 12.0], [40.0, 8.0, 8.0, 20.0]])
    image[0, 0, 6:18, 4:20] = 1.0  # a red "car"
    image[0, 2, 8:28, 40:48] = 1.0  # a blue "person"
    targets = collate_targets([boxes], [torch.tensor([0, 2])], 5, (32, 64), 4)
    model = UNetDetector(DetectorConfig(width=8, head_width=16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = detection_loss(model(image), targets)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
