"""SelectionExplorer: thumbnails of selected frames, per method, sortable and filterable.

One row of the input table per (method, frame): ``frame_id``, ``method`` and one score
column per class (e.g. mean MI); ``session_id`` (ints or strings) and ``time_of_day``, when
the table has them, add a session and a time-of-day filter. Only the current page's
thumbnails (at most ``MAX_THUMBNAILS`` small PNGs) cross the wire; clicking a thumbnail's
button opens the frame in a linked ``HeatmapViewer`` and calls ``on_open(frame_id)``.
"""

from __future__ import annotations

import html
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import traitlets

from alkit.data.classes import CLASSES
from alkit.errors import ConfigError
from alkit.experiments.tables import METHOD_COLORS, METHOD_ORDER

from .render import array_to_png

#: Most thumbnails one page sends to the browser.
MAX_THUMBNAILS = 24
REQUIRED_COLUMNS = ("frame_id", "method")
FRAME_ID = "frame_id"
SESSION = "session_id"
TIME_OF_DAY = "time_of_day"
ALL_METHODS = "all methods"


def _ordered_methods(methods: Sequence[str]) -> tuple[str, ...]:
    present = list(dict.fromkeys(methods))
    known = [m for m in METHOD_ORDER if m in present]
    return tuple(known + sorted(m for m in present if m not in known))


def _sorted_values(values: pd.Series) -> tuple:
    """The distinct non-missing values, sorted (by their text when of mixed types)."""
    present = values.dropna().unique().tolist()
    try:
        return tuple(sorted(present))
    except TypeError:
        return tuple(sorted(present, key=str))


def _close_tree(widget: widgets.Widget) -> None:
    """Close a widget and, for boxes, everything inside it (frees their front-end models)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def check_selection_table(
    table: Any, classes: Sequence[str] | None, known: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Validate a selection table; returns its score classes. Raises ``ConfigError``.

    ``classes`` default: those of ``known`` (e.g. a viewer's classes) the table has columns
    for, else those of the synthetic world's ``CLASSES``.
    """
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"selections must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(
            f"selection table lacks columns {missing}; it needs {list(REQUIRED_COLUMNS)} "
            f"plus one score column per class (it has {list(table.columns)})"
        )
    if table.empty:
        raise ConfigError("selection table is empty: no selected frames to show")
    if classes is None:
        names = tuple(known) if known else CLASSES
        classes = tuple(c for c in names if c in table.columns)
        if not classes:
            raise ConfigError(
                f"selection table has no score columns; expected columns named by class "
                f"({', '.join(names)}) or pass classes="
            )
    absent = [c for c in classes if c not in table.columns]
    if absent:
        raise ConfigError(f"selection table lacks score columns for classes {absent}")
    for c in classes:
        if not pd.api.types.is_numeric_dtype(table[c]):
            raise ConfigError(f"score column {c!r} must be numeric, got dtype {table[c].dtype}")
    dup = table[table.duplicated(["method", FRAME_ID])]
    if len(dup):
        pairs = list(zip(dup.method, dup.frame_id, strict=True))[:5]
        raise ConfigError(f"selection table lists a frame twice for one method: {pairs}")
    return tuple(classes)


class SelectionExplorer(widgets.VBox):
    """A grid of selected frames per method (side by side) or all methods merged.

    Args:
        selections: one row per (method, frame): ``frame_id``, ``method`` and a numeric
            score column per class; optional ``session_id`` (ints or strings) and
            ``time_of_day`` give filters (without the column, no such filter).
        image_fn: ``frame_id -> (H, W, 3)`` uint8 image (thumbnails are made and cached
            here), e.g. ``viewer.maps.image`` (own data: the original images).
        classes: score columns (default: the viewer's classes the table has, else the
            ``alkit.data.classes.CLASSES`` present).
        viewer: a ``HeatmapViewer`` holding every frame of the table; opening a frame sets
            its ``frame_id``.
        on_open: called with the frame id when a thumbnail's button is clicked.
        page_size: thumbnails per page, at most ``MAX_THUMBNAILS`` (split between methods
            when side by side).
        columns: thumbnails per row of each method's grid.
        thumb_width: thumbnail width in px.
    """

    sort_by = traitlets.Unicode(FRAME_ID)
    descending = traitlets.Bool(False)
    threshold_class = traitlets.Unicode()
    threshold = traitlets.Float(0.0)
    sessions = traitlets.Tuple()
    times_of_day = traitlets.Tuple()
    methods = traitlets.Tuple()
    side_by_side = traitlets.Bool(True)
    page = traitlets.Int(0)
    opened_frame = traitlets.Int(None, allow_none=True)

    def __init__(
        self,
        selections: pd.DataFrame,
        image_fn: Callable[[int], np.ndarray],
        classes: Sequence[str] | None = None,
        viewer: Any | None = None,
        on_open: Callable[[int], None] | None = None,
        page_size: int = 12,
        columns: int = 3,
        thumb_width: int = 120,
    ) -> None:
        super().__init__()
        self.classes = check_selection_table(selections, classes, getattr(viewer, "classes", None))
        if not callable(image_fn):
            raise ConfigError(f"image_fn must be callable, got {image_fn!r}")
        if on_open is not None and not callable(on_open):
            raise ConfigError(f"on_open must be callable, got {on_open!r}")
        if not 1 <= page_size <= MAX_THUMBNAILS:
            raise ConfigError(f"page_size must be in 1..{MAX_THUMBNAILS}, got {page_size}")
        if columns < 1 or thumb_width < 16:
            raise ConfigError(f"need columns >= 1 and thumb_width >= 16, got {columns}, "
                              f"{thumb_width}")  # fmt: skip
        table = selections.reset_index(drop=True).copy()
        table[FRAME_ID] = table[FRAME_ID].astype("int64")
        if viewer is not None:
            held = set(getattr(viewer, "frame_ids", ()))
            lacking = sorted(set(table[FRAME_ID].tolist()) - held)
            if lacking:
                raise ConfigError(
                    f"the viewer does not hold {len(lacking)} selected frame(s), e.g. "
                    f"{lacking[:5]}; build it with the table's frame ids"
                )
        self.table = table
        self.image_fn, self.viewer, self.on_open = image_fn, viewer, on_open
        self.page_size, self.columns, self.thumb_width = page_size, columns, thumb_width
        self.all_methods = _ordered_methods(table.method.tolist())
        self.has_sessions = SESSION in table.columns
        self.has_times = TIME_OF_DAY in table.columns
        self.all_sessions = _sorted_values(table[SESSION]) if self.has_sessions else ()
        times = table[TIME_OF_DAY].astype(str) if self.has_times else pd.Series([], dtype=str)
        self.all_times = _sorted_values(times)
        self._thumbs: OrderedDict[int, bytes] = OrderedDict()
        self.buttons: dict[tuple[str, int], widgets.Button] = {}

        self.threshold_class = self.classes[0]
        self.methods, self.sessions = self.all_methods, self.all_sessions
        self.times_of_day = self.all_times
        self._build_controls()
        filters = ["sort_by", "descending", "threshold_class", "threshold", "sessions",
                   "times_of_day", "methods", "side_by_side"]  # fmt: skip
        self.observe(self._on_filter, filters)
        self.observe(lambda _: self._redraw(), "page")
        self._redraw()

    # validation ------------------------------------------------------------------------
    @traitlets.validate("sort_by")
    def _valid_sort(self, proposal: dict) -> str:
        if proposal["value"] not in (FRAME_ID, *self.classes):
            raise ConfigError(
                f"cannot sort by {proposal['value']!r}; choose frame_id or a class "
                f"({', '.join(self.classes)})"
            )
        return proposal["value"]

    @traitlets.validate("threshold_class")
    def _valid_threshold_class(self, proposal: dict) -> str:
        if proposal["value"] not in self.classes:
            raise ConfigError(
                f"unknown class {proposal['value']!r}; known classes: {', '.join(self.classes)}"
            )
        return proposal["value"]

    @traitlets.validate("sessions", "times_of_day", "methods")
    def _valid_subset(self, proposal: dict) -> tuple:
        name = proposal["trait"].name
        known = {"sessions": self.all_sessions, "times_of_day": self.all_times,
                 "methods": self.all_methods}[name]  # fmt: skip
        column = {"sessions": SESSION, "times_of_day": TIME_OF_DAY}.get(name)
        if column is not None and column not in self.table.columns and proposal["value"]:
            raise ConfigError(
                f"the selection table has no {column!r} column, so there is no {name} filter"
            )
        unknown = [v for v in proposal["value"] if v not in known]
        if unknown:
            raise ConfigError(f"unknown {name} {unknown}; the table has {list(known)}")
        return tuple(proposal["value"])

    @traitlets.validate("threshold")
    def _valid_threshold(self, proposal: dict) -> float:
        value, top = float(proposal["value"]), self.threshold_slider.max
        if not 0.0 <= value <= top:
            raise ConfigError(f"threshold must be in [0, {top:.4g}] (the top score), got {value}")
        return value

    @traitlets.validate("page")
    def _valid_page(self, proposal: dict) -> int:
        page = int(proposal["value"])
        if not 0 <= page < self.n_pages:
            raise ConfigError(f"page {page} out of range 0..{self.n_pages - 1}")
        return page

    # filtering -------------------------------------------------------------------------
    def filtered(self) -> pd.DataFrame:
        """Rows passing every filter, sorted (ties and NaN scores ordered by frame id)."""
        t = self.table
        keep = t.method.isin(self.methods)
        if self.has_sessions and set(self.sessions) != set(self.all_sessions):
            keep &= t[SESSION].isin(self.sessions)  # (all selected: rows without one too)
        if self.has_times:
            keep &= t[TIME_OF_DAY].astype(str).isin(self.times_of_day)
        if self.threshold > 0:
            keep &= t[self.threshold_class] >= self.threshold
        rows = t[keep]
        if self.sort_by == FRAME_ID:
            return rows.sort_values(FRAME_ID, ascending=not self.descending, kind="stable")
        rows = rows.sort_values(FRAME_ID, kind="stable")
        return rows.sort_values(
            self.sort_by, ascending=not self.descending, kind="stable", na_position="last"
        )

    def groups(self) -> dict[str, pd.DataFrame]:
        """Filtered rows per column group: one per selected method, or one merged group."""
        rows = self.filtered()
        if not self.side_by_side:
            return {ALL_METHODS: rows}
        return {m: rows[rows.method == m] for m in self.methods}

    @property
    def per_group(self) -> int:
        """Thumbnails per group on a page (the page size split between groups)."""
        n = len(self.methods) if self.side_by_side else 1
        return max(1, self.page_size // max(n, 1))

    @property
    def n_pages(self) -> int:
        """Pages needed for the longest group (at least 1)."""
        longest = max((len(g) for g in self.groups().values()), default=0)
        return max(1, math.ceil(longest / self.per_group))

    @property
    def visible(self) -> dict[str, list[int]]:
        """Frame ids on the current page, per group."""
        start = self.page * self.per_group
        return {
            name: rows[FRAME_ID].iloc[start : start + self.per_group].tolist()
            for name, rows in self.groups().items()
        }

    @property
    def visible_frame_ids(self) -> list[int]:
        """Frame ids on the current page, group after group."""
        return [fid for ids in self.visible.values() for fid in ids]

    # opening ---------------------------------------------------------------------------
    def open_frame(self, frame_id: int) -> None:
        """Show ``frame_id`` in the linked viewer and call ``on_open``."""
        fid = int(frame_id)
        if fid not in set(self.table[FRAME_ID].tolist()):
            raise ConfigError(f"frame {fid} is not in the selection table")
        if self.viewer is not None:
            self.viewer.frame_id = fid
        self.opened_frame = fid
        if self.on_open is not None:
            self.on_open(fid)

    def button(self, frame_id: int, method: str | None = None) -> widgets.Button:
        """The open button of a visible thumbnail (of ``method``, if given)."""
        for (m, fid), button in self.buttons.items():
            if fid == int(frame_id) and (method is None or m == method):
                return button
        raise KeyError(f"frame {frame_id} is not on the current page")

    # drawing ---------------------------------------------------------------------------
    def thumbnail(self, frame_id: int) -> bytes:
        """PNG bytes of a frame's thumbnail (cached)."""
        png = self._thumbs.get(frame_id)
        if png is None:
            image = self.image_fn(frame_id)
            png = array_to_png(image, self.thumb_width, where=f"frame {frame_id}: image_fn")
            self._thumbs[frame_id] = png
            if len(self._thumbs) > 4 * MAX_THUMBNAILS:
                self._thumbs.popitem(last=False)
        return png

    def _card(self, row: pd.Series, group: str) -> widgets.VBox:
        fid, method = int(row[FRAME_ID]), str(row.method)
        image = widgets.Image(value=self.thumbnail(fid), format="png")
        image.layout.width = f"{self.thumb_width}px"
        button = widgets.Button(
            description=f"open {fid}",
            tooltip=", ".join(f"{c} {row[c]:.4g}" for c in self.classes),
            layout=widgets.Layout(width=f"{self.thumb_width}px"),
        )
        button.on_click(lambda _: self.open_frame(fid))
        self.buttons[(method, fid)] = button
        score = "" if self.sort_by == FRAME_ID else f" · {self.sort_by} {row[self.sort_by]:.3g}"
        parts = [method] if group == ALL_METHODS else []
        if self.has_sessions:
            session = row[SESSION]
            is_int = isinstance(session, int | np.integer)
            parts.append(f"s{session}" if is_int else str(session))  # s3, or drive-07
        if self.has_times:
            parts.append(str(row[TIME_OF_DAY]))
        text = " · ".join(parts) + score if parts else score.removeprefix(" · ")
        note = widgets.HTML(f"<small>{html.escape(text)}</small>")
        return widgets.VBox([image, button, note])

    def _on_filter(self, _: dict) -> None:
        if self.page != 0:
            self.page = 0  # redraws
        else:
            self._redraw()

    def _redraw(self) -> None:
        for column in self.grid.children:
            _close_tree(column)
        self.buttons = {}
        self.page_slider.max = self.n_pages - 1
        self.page_slider.disabled = self.n_pages == 1
        start = self.page * self.per_group
        columns = []
        for name, rows in self.groups().items():
            cards = [self._card(r, name) for _, r in rows.iloc[start : start + self.per_group]
                     .iterrows()]  # fmt: skip
            color = METHOD_COLORS.get(name, "#444")
            sessions = f", {rows[SESSION].nunique()} sessions" if self.has_sessions else ""
            head = widgets.HTML(
                f"<b style='color:{color}'>{html.escape(name)}</b> "
                f"<small>{len(rows)} frames{html.escape(sessions)}</small>"
            )
            width = self.thumb_width + 12
            cols = self.columns if self.side_by_side else 2 * self.columns
            grid = widgets.GridBox(
                cards, layout=widgets.Layout(grid_template_columns=f"repeat({cols}, {width}px)")
            )
            columns.append(
                widgets.VBox(
                    [head, grid], layout=widgets.Layout(flex="0 0 auto", margin="0 12px 8px 0")
                )
            )
        self.grid.children = columns
        self.page_label.value = f"page {self.page + 1} / {self.n_pages}"

    def _build_controls(self) -> None:
        self.sort_dropdown = widgets.Dropdown(options=(FRAME_ID, *self.classes),
                                              description="sort by")  # fmt: skip
        self.descending_checkbox = widgets.Checkbox(description="descending", indent=False)
        self.threshold_dropdown = widgets.Dropdown(options=self.classes, description="score of")
        top = float(np.nanmax(self.table[list(self.classes)].to_numpy(dtype=float), initial=0))
        self.threshold_slider = widgets.FloatSlider(
            min=0.0, max=max(top, 1e-6), step=max(top, 1e-6) / 100, description="score >=",
            readout_format=".3g",
        )  # fmt: skip
        self.session_select = widgets.SelectMultiple(
            options=self.all_sessions, description="sessions", rows=4,
            disabled=not self.has_sessions,
        )  # fmt: skip
        self.time_select = widgets.SelectMultiple(
            options=self.all_times, description="time of day", rows=3,
            disabled=not self.has_times,
        )  # fmt: skip
        self.method_select = widgets.SelectMultiple(
            options=self.all_methods, description="methods", rows=4
        )
        self.side_checkbox = widgets.Checkbox(description="side by side", indent=False)
        self.page_slider = widgets.IntSlider(min=0, max=0, description="page", readout=False)
        self.page_label = widgets.Label()
        pairs = [
            ("sort_by", self.sort_dropdown), ("descending", self.descending_checkbox),
            ("threshold_class", self.threshold_dropdown), ("threshold", self.threshold_slider),
            ("sessions", self.session_select), ("times_of_day", self.time_select),
            ("methods", self.method_select), ("side_by_side", self.side_checkbox),
            ("page", self.page_slider),
        ]  # fmt: skip
        for trait, control in pairs:
            control.value = getattr(self, trait)
            traitlets.link((self, trait), (control, "value"))
        # methods side by side keep their width and wrap to the next row when the page is narrow
        self.grid = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.children = [
            widgets.HBox([self.sort_dropdown, self.descending_checkbox, self.side_checkbox]),
            widgets.HBox([self.threshold_dropdown, self.threshold_slider]),
            widgets.HBox(
                [self.method_select]
                + [self.session_select] * self.has_sessions
                + [self.time_select] * self.has_times
            ),
            widgets.HBox([self.page_slider, self.page_label]),
            self.grid,
        ]
