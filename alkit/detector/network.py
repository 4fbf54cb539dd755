"""U-Net backbone with CenterNet-style heads, and ``decode()`` from head maps to boxes.

The network maps an image ``(B, 3, H, W)`` in [0, 1] to maps at output stride ``s``:

- ``heatmap_logits`` ``(B, C, H/s, W/s)``: per class, the logit of the probability that an
  object of that class has its box centred in that cell (the map the ensemble's mutual
  information is computed on).
- ``size`` ``(B, 2, H/s, W/s)``: ``(log(w / s), log(h / s))``, the log of the box width and
  height measured in output cells. Log-size keeps the regression well scaled for boxes from
  ~3 px (distant traffic lights) to ~90 px (near cars).
- ``offset`` ``(B, 2, H/s, W/s)``: ``(cx / s - i, cy / s - j)``, the sub-cell position of the
  box centre inside cell ``(j, i)``, in cells, in [0, 1).

So a box centred at pixel ``(cx, cy)`` lives in cell ``(floor(cy / s), floor(cx / s))`` and is
decoded as ``cx = (i + offset_x) * s``, ``w = exp(size_w) * s``. ``alkit.detector.targets`` encodes
boxes with the same convention.

Inputs whose H or W is not a multiple of ``2**depth`` raise ``ConfigError`` (pad or resize
first); they are not padded silently, because that would shift the output grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from alkit.errors import ConfigError, check_known_fields

#: CenterNet's heatmap bias init: sigmoid(-2.19) ~= 0.1, so early training is not swamped
#: by the loss on the (many) background cells.
HEATMAP_BIAS_INIT = -2.19

#: Log-size logits are clamped to this before ``exp`` in ``decode`` (exp(10) cells is huge).
MAX_LOG_SIZE = 10.0


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture of a ``UNetDetector``.

    Attributes:
        num_classes: number of heatmap channels C (one per class, ``alkit.data.classes.CLASSES``).
        in_channels: image channels (3 for RGB).
        width: channels of the full-resolution encoder level; doubles at every level.
        depth: number of 2x down-sampling levels; inputs must be multiples of ``2**depth``.
        stride: output stride s, a power of two with ``1 <= s <= 2**depth``.
        head_width: hidden channels of each head.
        dropout: spatial (channel) dropout probability before the heads, for MC-dropout.
    """

    num_classes: int = 5
    in_channels: int = 3
    width: int = 16
    depth: int = 3
    stride: int = 4
    head_width: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_classes", "in_channels", "width", "head_width", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DetectorConfig.{name} must be a positive int, got {value!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ConfigError(f"DetectorConfig.depth must be an int >= 0, got {self.depth!r}")
        if self.stride & (self.stride - 1) or self.stride > 2**self.depth:
            raise ConfigError(
                f"DetectorConfig.stride must be a power of two <= 2**depth = {2**self.depth}, "
                f"got {self.stride}; raise depth or lower stride"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"DetectorConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def input_multiple(self) -> int:
        """Input H and W must be multiples of this (``2**depth``)."""
        return 2**self.depth

    def to_dict(self) -> dict[str, Any]:
        """Plain-value dict (for checkpoints, papermill parameters, JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ConfigError`` naming them."""
        check_known_fields(cls, values)
        return cls(**values)


class DetectorOutput(NamedTuple):
    """Head maps of a ``UNetDetector``; see the module docstring for units."""

    heatmap_logits: Tensor  # (B, C, H/s, W/s)
    size: Tensor  # (B, 2, H/s, W/s) log(w/s), log(h/s)
    offset: Tensor  # (B, 2, H/s, W/s) centre offset in cells


class Detections(NamedTuple):
    """Boxes of one image: ``boxes (K, 4)`` COCO xywh in pixels (float32), ``scores (K,)``
    in [0, 1], ``labels (K,)`` int64 class indices."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor


class DoubleConv(nn.Sequential):
    """(conv3x3 -> BN -> ReLU) x 2; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Bilinear 2x up-sampling, concatenation with the skip, then a ``DoubleConv``."""

    def __init__(self, deep_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.conv = DoubleConv(deep_channels + skip_channels, skip_channels)

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([x, skip], dim=1)  # (B, Cd + Cs, h, w)
        return self.conv(x)  # (B, Cs, h, w)


def _head(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, out_channels, 1),
    )


class UNetDetector(nn.Module):
    """U-Net encoder-decoder, decoded back to the output stride, with CenterNet heads.

    Encoder level ``l`` (0..depth) has ``width * 2**l`` channels at resolution ``H / 2**l``;
    the decoder climbs from level ``depth`` to level ``log2(stride)`` with skip connections.
    ``forward`` takes ``(B, in_channels, H, W)`` images in [0, 1] and returns a
    ``DetectorOutput``. For MC-dropout with ``config.dropout > 0``, call ``model.eval()`` and
    then ``model.head_dropout.train()`` so BatchNorm uses its running statistics.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DetectorConfig()
        channels = [config.width * 2**level for level in range(config.depth + 1)]
        self.stem = DoubleConv(config.in_channels, channels[0])
        self.down = nn.ModuleList(
            DoubleConv(channels[level - 1], channels[level]) for level in range(1, config.depth + 1)
        )
        self.out_level = config.stride.bit_length() - 1  # log2(stride)
        self.up = nn.ModuleList(
            Up(channels[level + 1], channels[level])
            for level in reversed(range(self.out_level, config.depth))
        )
        feat = channels[self.out_level]
        self.head_dropout = nn.Dropout2d(config.dropout)
        self.heatmap_head = _head(feat, config.head_width, config.num_classes)
        self.size_head = _head(feat, config.head_width, 2)
        self.offset_head = _head(feat, config.head_width, 2)
        nn.init.constant_(self.heatmap_head[-1].bias, HEATMAP_BIAS_INIT)

    def check_input(self, images: Tensor) -> None:
        """Raise ``ConfigError`` unless ``images`` is ``(B, in_channels, H, W)`` with H and W
        multiples of ``2**depth``."""
        cfg = self.config
        if images.ndim != 4 or images.shape[1] != cfg.in_channels:
            raise ConfigError(
                f"expected images of shape (B, {cfg.in_channels}, H, W), got {tuple(images.shape)}"
            )
        h, w = images.shape[-2:]
        m = cfg.input_multiple
        if h % m or w % m:
            raise ConfigError(
                f"input size {h}x{w} (HxW) is not a multiple of 2**depth = {m} "
                f"(depth={cfg.depth}); pad or resize the images to a multiple of {m}"
            )

    def forward(self, images: Tensor) -> DetectorOutput:
        """``images (B, in_channels, H, W)`` in [0, 1] -> maps at ``(H/s, W/s)``."""
        self.check_input(images)
        x = self.stem(images)  # (B, width, H, W)
        skips = [x]
        for block in self.down:
            x = block(F.max_pool2d(x, 2))  # (B, width * 2**l, H/2**l, W/2**l)
            skips.append(x)
        for block, level in zip(
            self.up, reversed(range(self.out_level, self.config.depth)), strict=True
        ):
            x = block(x, skips[level])  # (B, width * 2**level, H/2**level, W/2**level)
        x = self.head_dropout(x)  # (B, F, H/s, W/s)
        return DetectorOutput(
            heatmap_logits=self.heatmap_head(x),  # (B, C, H/s, W/s)
            size=self.size_head(x),  # (B, 2, H/s, W/s)
            offset=self.offset_head(x),  # (B, 2, H/s, W/s)
        )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def decode(
    output: DetectorOutput, stride: int, k: int = 100, threshold: float = 0.01
) -> list[Detections]:
    """Head maps -> at most ``k`` boxes per image with score >= ``threshold``.

    Peaks are cells equal to the 3x3 max of their neighbourhood (CenterNet's NMS-free peak
    extraction), per class; the top ``k`` over all classes and cells are kept.

    Args:
        output: ``DetectorOutput`` with maps ``(B, C, h, w)``, ``(B, 2, h, w)``, ``(B, 2, h, w)``.
        stride: output stride s in pixels per cell.
        k: maximum detections per image.
        threshold: minimum score (sigmoid probability).

    Returns:
        One ``Detections`` per image, sorted by decreasing score, boxes xywh in pixels.
    """
    logits, size, offset = output
    b, c, h, w = logits.shape
    heat = torch.sigmoid(logits.float())  # (B, C, h, w)
    peak = heat == F.max_pool2d(heat, 3, stride=1, padding=1)  # (B, C, h, w)
    heat = heat.masked_fill(~peak, -1.0)  # (B, C, h, w) non-peaks never pass the threshold
    scores, index = heat.flatten(1).topk(min(k, c * h * w), dim=1)  # (B, K), (B, K)
    labels = index // (h * w)  # (B, K)
    cell = index % (h * w)  # (B, K)
    ys, xs = cell // w, cell % w  # (B, K)
    gather = cell.unsqueeze(1).expand(-1, 2, -1)  # (B, 2, K)
    wh = size.float().flatten(2).gather(2, gather).clamp(max=MAX_LOG_SIZE).exp()  # (B, 2, K)
    off = offset.float().flatten(2).gather(2, gather)  # (B, 2, K)
    cx = (xs + off[:, 0]) * stride  # (B, K) px
    cy = (ys + off[:, 1]) * stride  # (B, K) px
    bw, bh = wh[:, 0] * stride, wh[:, 1] * stride  # (B, K) px
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, bw, bh], dim=-1)  # (B, K, 4)
    keep = (scores >= threshold) & (scores >= 0)  # (B, K)
    return [
        Detections(boxes[i][keep[i]], scores[i][keep[i]], labels[i][keep[i]].long())
        for i in range(b)
    ]
