"""QAViewer: each box label QA flagged, drawn on its image, worst first.

Input is the QA table of ``alkit.annotate.qa`` (``alkit.serve.label_qa.qa_labels``): one row
per scored box with ``frame_id``, ``kind``, ``category``, ``predicted_class``, ``x, y, w, h``
(px of the original image), ``score`` and ``flagged``. Only the flagged box's frame crosses
the wire, as one small PNG: the flagged box thick (red: a class swap, orange: bad location,
cyan: a missed object the ensemble found), the frame's other labelled boxes thin and grey.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd
import traitlets
from PIL import Image, ImageDraw

from alkit.errors import ConfigError

from .render import array_to_png

REQUIRED_COLUMNS = (
    "frame_id",
    "kind",
    "category",
    "predicted_class",
    "x",
    "y",
    "w",
    "h",
    "score",
    "flagged",
)
COLORS = {"swap": (230, 40, 40), "badloc": (255, 150, 0), "overlooked": (0, 220, 255)}
ALL = "all kinds"
WHAT = {
    "overlooked": "a missed object? the ensemble sees a {predicted_class} no box covers",
    "swap": "a class swap? labelled {category}, the ensemble sees a {predicted_class}",
    "badloc": "a badly placed box? the {category} box overlaps the ensemble's little",
}


def check_qa_table(table: object) -> pd.DataFrame:
    """The flagged rows of a QA table, worst first; ``ConfigError`` naming what is wrong."""
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"the QA table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"the QA table lacks columns {missing} (alkit.annotate.qa.COLUMNS)")
    unknown = sorted(set(table.kind) - set(COLORS))
    if unknown:
        raise ConfigError(f"the QA table has unknown kinds {unknown}; known: {sorted(COLORS)}")
    return table[table.flagged].sort_values(["score", "frame_id"]).reset_index(drop=True)


def draw_box(image: np.ndarray, row: pd.Series, others: pd.DataFrame) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with ``others`` (label boxes, thin grey) and the flagged
    ``row`` (thick, its kind's colour) drawn on a copy."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    for o in others.itertuples():
        draw.rectangle([o.x, o.y, o.x + o.w, o.y + o.h], outline=(170, 170, 170), width=1)
    width = max(2, round(max(pil.size) / 160))
    draw.rectangle(
        [row.x, row.y, row.x + row.w, row.y + row.h], outline=COLORS[row.kind], width=width
    )
    return np.asarray(pil)


class QAViewer(widgets.VBox):
    """One flagged box at a time (see the module docstring).

    Args:
        table: the QA table.
        image_fn: ``frame_id -> (H, W, 3)`` uint8 original image (its px are the table's).
        max_width: the PNG's width at most, in px.
    """

    kind = traitlets.Unicode(ALL)
    index = traitlets.Int(0)

    def __init__(
        self, table: pd.DataFrame, image_fn: Callable[[int], np.ndarray], max_width: int = 640
    ) -> None:
        super().__init__()
        if not callable(image_fn):
            raise ConfigError(f"image_fn must be callable, got {image_fn!r}")
        self.table, self.flagged = table, check_qa_table(table)
        self.image_fn, self.max_width = image_fn, max_width
        kinds = [k for k in COLORS if (self.flagged.kind == k).any()]
        self._kind = widgets.Dropdown(options=[ALL, *kinds], value=ALL, description="kind")
        self._prev = widgets.Button(description="previous", icon="arrow-left")
        self._next = widgets.Button(description="next", icon="arrow-right")
        self._image = widgets.Image(format="png")
        self._caption = widgets.HTML()
        traitlets.link((self._kind, "value"), (self, "kind"))
        self._prev.on_click(lambda _: self._step(-1))
        self._next.on_click(lambda _: self._step(1))
        self.observe(self._render, names=["kind", "index"])
        self.children = [
            widgets.HBox([self._kind, self._prev, self._next]),
            self._caption,
            self._image,
        ]
        self._render()

    @property
    def rows(self) -> pd.DataFrame:
        """The flagged rows of the chosen kind, worst first."""
        if self.kind == ALL:
            return self.flagged
        return self.flagged[self.flagged.kind == self.kind].reset_index(drop=True)

    @traitlets.validate("index")
    def _valid_index(self, proposal):
        n = len(self.rows)
        if n and not 0 <= proposal["value"] < n:
            raise traitlets.TraitError(f"index must be in 0..{n - 1}, got {proposal['value']}")
        return proposal["value"]

    def _step(self, by: int) -> None:
        n = len(self.rows)
        if n:
            self.index = (self.index + by) % n

    def _render(self, change=None) -> None:
        rows = self.rows
        if change is not None and change["name"] == "kind" and self.index != 0:
            self.index = 0  # renders again
            return
        if not len(rows):
            self._caption.value = "<b>no flagged box</b>: QA found nothing to review"
            self._image.value = b""
            return
        row = rows.iloc[min(self.index, len(rows) - 1)]
        labelled = self.table[(self.table.frame_id == row.frame_id) & (self.table.kind == "swap")]
        image = draw_box(np.asarray(self.image_fn(int(row.frame_id))), row, labelled)
        self._image.value = array_to_png(image, self.max_width, f"frame {row.frame_id}")
        what = WHAT[row.kind].format(category=row.category, predicted_class=row.predicted_class)
        self._caption.value = (
            f"<b>{self.index + 1} / {len(rows)}</b> &nbsp; frame {int(row.frame_id)}: "
            f"{html.escape(what)} (score {row.score:.3f}; low = likely wrong)"
        )


__all__ = ["ALL", "QAViewer", "check_qa_table", "draw_box"]
