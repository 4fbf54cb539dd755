"""Make a trained detector fast for scoring: BatchNorm folded into convolutions, NHWC layout.

Folding uses ``torch.nn.utils.fusion.fuse_conv_bn_eval`` (exact up to float rounding); the
channels-last memory format lets oneDNN (CPU) and cuDNN (GPU) pick faster kernels. The
original model is left untouched.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """In place: every ``Conv2d`` directly followed by ``BatchNorm2d`` in a ``Sequential``
    becomes one ``Conv2d`` (the BatchNorm is replaced by ``Identity``). Needs eval mode."""
    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[a] = fuse_conv_bn_eval(conv, bn)
                module._modules[b] = nn.Identity()
    return module


def prepare_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """A copy of ``model`` in eval mode with BatchNorm folded and (optionally) NHWC weights.

    Dropout layers are kept, so a prepared copy can still be switched to MC-dropout
    (``model.head_dropout.train()``).
    """
    fast = fold_batchnorm(copy.deepcopy(model).eval())
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast
