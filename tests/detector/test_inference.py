"""Inference preparation: BatchNorm folding and channels-last keep the outputs."""

import torch

from alkit.detector.inference import prepare_for_inference
from alkit.detector.network import DetectorConfig, UNetDetector


def test_prepared_model_gives_the_same_outputs():
    torch.manual_seed(0)
    model = UNetDetector(DetectorConfig(width=8, depth=2, stride=4))
    model.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        model(torch.rand(4, 3, 32, 48))
    model.eval()
    fast = prepare_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original kept
    x = torch.rand(2, 3, 32, 48)
    with torch.inference_mode():
        a, b = model(x), fast(x.contiguous(memory_format=torch.channels_last))
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)
