"""Pixels for the wire: matplotlib figures and image arrays -> small PNG bytes.

Widgets never use pyplot (no global figure state, no GUI backend): they build a
``matplotlib.figure.Figure``, draw it with the Agg canvas and send only the PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

#: Dots per inch of every widget figure: a figure of ``(w, h)`` inches is ``(100 w, 100 h)`` px.
DPI = 100


def figure_to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Render ``fig`` with the Agg canvas to PNG bytes (size = figsize * dpi, no cropping)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def as_rgb_uint8(image: np.ndarray, where: str = "image") -> np.ndarray:
    """``(H, W, 3)`` / ``(H, W)`` uint8 or float in [0, 1] -> ``(H, W, 3)`` uint8.

    Raises ``ValueError`` naming ``where`` for any other shape or dtype.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)  # (H, W, 3)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"{where}: expected an (H, W, 3) or (H, W) image, got {image.shape}")
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{where}: image has NaN or inf pixels")
        return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    raise ValueError(f"{where}: expected uint8 or float pixels, got dtype {image.dtype}")


def array_to_png(image: np.ndarray, max_width: int | None = None, where: str = "image") -> bytes:
    """``(H, W, 3)`` uint8 image -> PNG bytes, downscaled to at most ``max_width`` px wide;
    bad images raise ``ValueError`` naming ``where``."""
    pil = Image.fromarray(as_rgb_uint8(image, where))
    if max_width is not None and pil.width > max_width:
        height = max(1, round(pil.height * max_width / pil.width))
        pil = pil.resize((max_width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def png_size(data: bytes | memoryview) -> tuple[int, int]:
    """``(width, height)`` in px of PNG bytes."""
    with Image.open(io.BytesIO(bytes(data))) as pil:
        return pil.size
