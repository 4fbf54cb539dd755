"""UNetDetector shapes, config handling, decode() and the targets -> decode round trip."""

from __future__ import annotations

import pytest
import torch

from alkit.detector.network import (
    Detections,
    DetectorConfig,
    DetectorOutput,
    UNetDetector,
    count_parameters,
    decode,
)
from alkit.detector.targets import encode_targets
from alkit.errors import ConfigError

SMALL = {"width": 4, "head_width": 8}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise IoU of xywh boxes ``(N, 4)`` and ``(N, 4)`` -> ``(N,)``."""
    lo = torch.maximum(a[:, :2], b[:, :2])  # (N, 2)
    hi = torch.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])  # (N, 2)
    inter = (hi - lo).clamp(min=0).prod(1)  # (N,)
    return inter / (a[:, 2:].prod(1) + b[:, 2:].prod(1) - inter)


@pytest.mark.parametrize("stride", [2, 4, 8])
@pytest.mark.parametrize("hw", [(64, 96), (96, 160), (128, 128)])
def test_output_shapes(hw: tuple[int, int], stride: int) -> None:
    model = UNetDetector(DetectorConfig(stride=stride, **SMALL)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *hw))
    h, w = hw[0] // stride, hw[1] // stride
    assert isinstance(out, DetectorOutput)
    assert out.heatmap_logits.shape == (2, 5, h, w)
    assert out.size.shape == (2, 2, h, w)
    assert out.offset.shape == (2, 2, h, w)


def test_default_config_parameter_count_and_heatmap_bias() -> None:
    model = UNetDetector(DetectorConfig())
    n = count_parameters(model)
    print(f"default UNetDetector parameters: {n}")
    assert 100_000 < n < 2_000_000
    assert count_parameters(model, trainable_only=True) == n
    torch.testing.assert_close(
        model.heatmap_head[-1].bias, torch.full((5,), -2.19), rtol=0, atol=1e-6
    )


def test_config_round_trip_and_validation() -> None:
    cfg = DetectorConfig(width=8, depth=4, stride=16, dropout=0.1)
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown DetectorConfig field"):
        DetectorConfig.from_dict({"widht": 8})
    with pytest.raises(ConfigError, match="power of two"):
        DetectorConfig(stride=3)
    with pytest.raises(ConfigError, match="2\\*\\*depth"):
        DetectorConfig(depth=2, stride=8)
    with pytest.raises(ConfigError, match="dropout"):
        DetectorConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="width"):
        DetectorConfig(width=0)


def test_bad_input_size_raises() -> None:
    model = UNetDetector(DetectorConfig(**SMALL))
    with pytest.raises(ConfigError, match="not a multiple of 2\\*\\*depth = 8"):
        model(torch.rand(1, 3, 95, 160))
    with pytest.raises(ConfigError, match="expected images of shape"):
        model(torch.rand(1, 1, 96, 160))


def test_mc_dropout_differs_in_train_mode_only() -> None:
    torch.manual_seed(0)
    model = UNetDetector(DetectorConfig(dropout=0.5, **SMALL))
    x = torch.rand(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    torch.testing.assert_close(a.heatmap_logits, b.heatmap_logits)
    model.head_dropout.train()  # MC-dropout: BatchNorm stays in eval mode
    with torch.no_grad():
        a, b = model(x), model(x)
    assert not torch.allclose(a.heatmap_logits, b.heatmap_logits)
    model.train()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert not torch.allclose(a.size, b.size)


def test_decode_returns_pixel_boxes_sorted_and_capped() -> None:
    model = UNetDetector(DetectorConfig(**SMALL)).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 96, 160))
    dets = decode(out, stride=4, k=7, threshold=0.0)
    assert len(dets) == 3
    for det in dets:
        assert isinstance(det, Detections)
        assert det.boxes.shape == (7, 4) and det.boxes.dtype == torch.float32
        assert det.labels.dtype == torch.int64
        assert (det.scores[:-1] >= det.scores[1:]).all()
        centres = det.boxes[:, :2] + det.boxes[:, 2:] / 2  # (K, 2) px
        assert (centres[:, 0] > -4).all() and (centres[:, 0] < 164).all()
        assert (centres[:, 1] > -4).all() and (centres[:, 1] < 100).all()
    assert all(len(d.boxes) == 0 for d in decode(out, stride=4, threshold=1.01))


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_targets_decode_round_trip(stride: int) -> None:
    boxes = torch.tensor(
        [
            [10.0, 12.0, 60.0, 40.0],  # near car
            [100.5, 20.25, 3.0, 3.5],  # distant traffic light
            [130.0, 50.0, 12.0, 30.0],  # person
            [70.0, 70.0, 20.0, 14.0],  # bicycle
        ]
    )
    labels = torch.tensor([0, 3, 2, 1])
    t = encode_targets(boxes, labels, num_classes=5, image_hw=(96, 160), stride=stride)
    perfect = DetectorOutput(
        heatmap_logits=torch.logit(t.heatmap.clamp(1e-4, 1 - 1e-4))[None],  # (1, C, h, w)
        size=t.size[None],  # (1, 2, h, w)
        offset=t.offset[None],  # (1, 2, h, w)
    )
    (det,) = decode(perfect, stride=stride, threshold=0.5)
    assert len(det.boxes) == len(boxes)
    order = det.boxes[:, 0].argsort()  # match by x: all x distinct
    expected = boxes[:, 0].argsort()
    assert torch.equal(det.labels[order], labels[expected])
    assert (box_iou(det.boxes[order], boxes[expected]) > 0.95).all()
    torch.testing.assert_close(det.boxes[order], boxes[expected], rtol=0, atol=1e-3)
