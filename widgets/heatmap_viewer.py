"""HeatmapViewer: a frame with a per-class MI (or one member's probability) map overlaid.

Arrays stay in Python: the viewer holds providers (``frame_id -> array``) and sends one PNG
per change. Its state is a few traitlets (``frame_id``, ``class_name``, ``source``,
``opacity``, ``show_gt``, ``show_detections``, ``score_threshold``, ``grey``), linked to the
controls, so tests and notebooks can set them directly::

    viewer = HeatmapViewer.from_ensemble(world, ensemble, frame_ids)
    viewer.class_name = "person"; viewer.frame_id = frame_ids[3]

``from_ensemble`` takes the synthetic ``World`` or a pool of own images (a ``Pool`` or its
source): own images are shown at their original size, with the maps and detections mapped
from the letterboxed model input onto them (``EnsembleMaps``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets
from PIL import Image

from alkit.data.classes import CLASSES
from alkit.errors import ConfigError

from .ensemble_maps import EnsembleMaps
from .heatmap_figure import Boxes, heatmap_figure
from .provider_arrays import check_boxes, check_frame_ids, check_heatmap, check_member_probs
from .render import as_rgb_uint8, figure_to_png

MI = "MI"
MEAN = "mean p"
#: Default ``max_size`` of a viewer on own images (originals may be many megapixels).
OWN_MAX_SIZE = 1024


class HeatmapViewer(widgets.VBox):
    """A frame with a per-class MI heatmap (or a member's probability map) overlaid.

    Args:
        frame_ids: frames the slider steps through (unique, at least one).
        image_fn: ``frame_id -> (H, W, 3)`` uint8 image.
        heatmap_fn: ``frame_id -> (C, h, w)`` mutual information, one map per class.
        classes: class names of the ``C`` channels.
        gt_fn: ``frame_id -> (boxes (N, 4) xywh px, labels (N,))``; enables "ground truth".
        detections_fn: ``frame_id -> Detections`` or ``(boxes, labels, scores)``; enables
            "detections" (the ensemble's mean detections).
        member_probs_fn: ``frame_id -> (M, C, h, w)`` member probabilities; enables the
            ``"mean p"`` and ``"member i"`` map sources.
        n_members: M; asked of ``member_probs_fn`` on the first frame when not given.
        caption_fn: ``frame_id -> str`` shown above the image (default ``"frame <id>"``).
        class_name: class shown first (default: the first class).
        opacity: alpha of the map; score_threshold: lowest detection score drawn.
        vmax: fixed top of the MI colour scale; ``None`` scales each map to its maximum.
        scale: screen px per image px.
        max_size: longest side, in screen px, of the image area; a larger frame is shown
            downscaled (its boxes with it). ``None``: no limit (the image is ``scale`` x its
            size).

    Raises ``ConfigError`` for bad settings and ``ValueError`` naming the frame when a
    provider returns a bad array (the first frame is rendered in the constructor).
    """

    frame_id = traitlets.Int()
    index = traitlets.Int(0)
    class_name = traitlets.Unicode()
    source = traitlets.Unicode(MI)
    opacity = traitlets.Float(0.5)
    show_gt = traitlets.Bool(False)
    show_detections = traitlets.Bool(False)
    score_threshold = traitlets.Float(0.3)
    grey = traitlets.Bool(True)

    def __init__(
        self,
        frame_ids: Sequence[int],
        image_fn: Callable[[int], np.ndarray],
        heatmap_fn: Callable[[int], np.ndarray],
        classes: Sequence[str] = CLASSES,
        gt_fn: Callable[[int], Any] | None = None,
        detections_fn: Callable[[int], Any] | None = None,
        member_probs_fn: Callable[[int], np.ndarray] | None = None,
        n_members: int | None = None,
        caption_fn: Callable[[int], str] | None = None,
        class_name: str | None = None,
        opacity: float = 0.5,
        score_threshold: float = 0.3,
        vmax: float | None = None,
        cmap: str = "turbo",
        scale: int = 4,
        max_size: int | None = None,
    ) -> None:
        super().__init__()
        self._frame_ids = check_frame_ids(frame_ids, "HeatmapViewer")
        self._position = {fid: i for i, fid in enumerate(self._frame_ids)}
        self.classes = tuple(classes)
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"classes must be unique names, at least one; got {classes!r}")
        named = {"image_fn": image_fn, "heatmap_fn": heatmap_fn, "gt_fn": gt_fn,
                 "detections_fn": detections_fn, "member_probs_fn": member_probs_fn,
                 "caption_fn": caption_fn}  # fmt: skip
        for name, fn in named.items():
            if fn is not None and not callable(fn):
                raise ConfigError(f"HeatmapViewer {name} must be callable, got {fn!r}")
        if scale < 1:
            raise ConfigError(f"scale must be >= 1, got {scale}")
        if max_size is not None and max_size < 16:
            raise ConfigError(f"max_size must be >= 16 px (or None), got {max_size}")
        self.image_fn, self.heatmap_fn = image_fn, heatmap_fn
        self.gt_fn, self.detections_fn = gt_fn, detections_fn
        self.member_probs_fn, self.caption_fn = member_probs_fn, caption_fn
        self.vmax, self.cmap, self.scale = vmax, cmap, int(scale)
        self.max_size = None if max_size is None else int(max_size)
        if member_probs_fn is not None and n_members is None:
            n_members = int(self._member_probs(self._frame_ids[0]).shape[0])
        self.n_members = int(n_members or 0) if member_probs_fn is not None else 0
        self.sources = (MI,) + (
            (MEAN, *(f"member {i}" for i in range(self.n_members))) if self.n_members else ()
        )

        self.frame_id = self._frame_ids[0]
        self.class_name = self.classes[0] if class_name is None else class_name
        self.opacity = opacity
        self.score_threshold = score_threshold
        self.show_gt = gt_fn is not None
        self._build_controls()
        self.observe(self._on_index, "index")
        self.observe(self._on_frame_id, "frame_id")
        self.observe(
            lambda _: self.refresh(),
            ["class_name", "source", "opacity", "show_gt", "show_detections",
             "score_threshold", "grey"],
        )  # fmt: skip
        self.refresh()

    # state -----------------------------------------------------------------------------
    @property
    def frame_ids(self) -> tuple[int, ...]:
        """The frames the slider steps through."""
        return self._frame_ids

    @property
    def png(self) -> bytes:
        """The PNG bytes currently shown."""
        return bytes(self.image.value)

    @traitlets.validate("frame_id")
    def _valid_frame_id(self, proposal: dict) -> int:
        fid = int(proposal["value"])
        if fid not in self._position:
            raise ValueError(
                f"frame {fid} is not among this viewer's {len(self._frame_ids)} frames; "
                "build the viewer with it in frame_ids"
            )
        return fid

    @traitlets.validate("index")
    def _valid_index(self, proposal: dict) -> int:
        i = int(proposal["value"])
        if not 0 <= i < len(self._frame_ids):
            raise ValueError(f"index {i} out of range 0..{len(self._frame_ids) - 1}")
        return i

    @traitlets.validate("class_name")
    def _valid_class(self, proposal: dict) -> str:
        if proposal["value"] not in self.classes:
            raise ConfigError(
                f"unknown class {proposal['value']!r}; known classes: {', '.join(self.classes)}"
            )
        return proposal["value"]

    @traitlets.validate("source")
    def _valid_source(self, proposal: dict) -> str:
        if proposal["value"] not in self.sources:
            hint = "" if self.n_members else " (pass member_probs_fn for member maps)"
            raise ConfigError(
                f"unknown map source {proposal['value']!r}; choose one of {self.sources}{hint}"
            )
        return proposal["value"]

    @traitlets.validate("opacity", "score_threshold")
    def _valid_unit(self, proposal: dict) -> float:
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{proposal['trait'].name} must be in [0, 1], got {value}")
        return value

    @traitlets.validate("show_gt", "show_detections")
    def _valid_toggle(self, proposal: dict) -> bool:
        name = proposal["trait"].name
        fn = self.gt_fn if name == "show_gt" else self.detections_fn
        if proposal["value"] and fn is None:
            needs = "gt_fn" if name == "show_gt" else "detections_fn"
            raise ConfigError(f"{name} needs a {needs}; none was given to the viewer")
        return bool(proposal["value"])

    def _on_index(self, change: dict) -> None:
        self.frame_id = self._frame_ids[change["new"]]

    def _on_frame_id(self, change: dict) -> None:
        self.index = self._position[change["new"]]
        self.refresh()

    # controls --------------------------------------------------------------------------
    def _build_controls(self) -> None:
        n = len(self._frame_ids)
        self.frame_slider = widgets.IntSlider(
            value=0, min=0, max=n - 1, description="frame", readout=False, disabled=n == 1
        )
        self.class_dropdown = widgets.Dropdown(options=self.classes, description="class")
        self.source_dropdown = widgets.Dropdown(options=self.sources, description="map")
        self.opacity_slider = widgets.FloatSlider(
            min=0.0, max=1.0, step=0.05, description="opacity"
        )
        self.gt_checkbox = widgets.Checkbox(
            description="ground truth", disabled=self.gt_fn is None, indent=False
        )
        self.detections_checkbox = widgets.Checkbox(
            description="detections", disabled=self.detections_fn is None, indent=False
        )
        self.score_slider = widgets.FloatSlider(
            min=0.0, max=1.0, step=0.05, description="min score",
            disabled=self.detections_fn is None,
        )  # fmt: skip
        self.grey_checkbox = widgets.Checkbox(description="grey image", indent=False)
        pairs = [
            ("index", self.frame_slider), ("class_name", self.class_dropdown),
            ("source", self.source_dropdown), ("opacity", self.opacity_slider),
            ("show_gt", self.gt_checkbox), ("show_detections", self.detections_checkbox),
            ("score_threshold", self.score_slider), ("grey", self.grey_checkbox),
        ]  # fmt: skip
        for trait, control in pairs:
            control.value = getattr(self, trait)
            traitlets.link((self, trait), (control, "value"))
        self.caption = widgets.HTML()
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.children = [
            widgets.HBox([self.frame_slider, self.caption]),
            widgets.HBox([self.class_dropdown, self.source_dropdown, self.opacity_slider]),
            widgets.HBox(
                [self.gt_checkbox, self.detections_checkbox, self.score_slider, self.grey_checkbox]
            ),
            self.image,
            self.status,
        ]

    # providers -------------------------------------------------------------------------
    def _heatmap(self, frame_id: int) -> np.ndarray:
        return check_heatmap(self.heatmap_fn(frame_id), frame_id, self.classes)

    def _member_probs(self, frame_id: int) -> np.ndarray:
        n = getattr(self, "n_members", None)  # unknown while the constructor asks for it
        return check_member_probs(self.member_probs_fn(frame_id), frame_id, self.classes, n)

    def current_map(self) -> tuple[np.ndarray, float, str]:
        """``(map (h, w), vmax, colour bar label)`` for the current frame, class and source."""
        fid, c = self.frame_id, self.classes.index(self.class_name)
        if self.source == MI:
            heat = self._heatmap(fid)[c]  # (h, w)
            vmax = self.vmax if self.vmax is not None else max(float(heat.max()), 1e-6)
            return heat, vmax, "MI (nats)"
        probs = self._member_probs(fid)[:, c]  # (M, h, w)
        if self.source == MEAN:
            return probs.mean(axis=0), 1.0, "mean p"
        member = int(self.source.split()[-1])
        return probs[member], 1.0, f"p ({self.source})"

    def render(self) -> bytes:
        """PNG bytes of the current view (does not update the widget)."""
        fid = self.frame_id
        image = as_rgb_uint8(self.image_fn(fid), where=f"frame {fid}: image_fn")
        heat, vmax, label = self.current_map()
        h, w = image.shape[:2]
        sy, sx = h / heat.shape[0], w / heat.shape[1]
        if abs(sy - sx) > 0.1 * max(sy, sx):
            raise ValueError(
                f"frame {fid}: map shape {heat.shape} does not match image {image.shape[:2]} "
                f"(strides {sy:.2f} vs {sx:.2f}); maps must be (h, w) at one output stride"
            )
        n = len(self.classes)
        gt = check_boxes(self.gt_fn(fid), fid, "gt_fn", n) if self.show_gt else None
        dets = None
        if self.show_detections:
            dets = check_boxes(self.detections_fn(fid), fid, "detections_fn", n)
            if dets.scores is not None:
                keep = dets.scores >= self.score_threshold
                dets = Boxes(dets.boxes[keep], dets.labels[keep], dets.scores[keep])
        factor = self.display_factor(h, w)
        if factor < 1.0:  # a large original: drawn downscaled, boxes with it
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
            gt, dets = (None if b is None else b._replace(boxes=b.boxes * factor)
                        for b in (gt, dets))  # fmt: skip
        fig = heatmap_figure(
            image, heat, vmax=vmax, opacity=self.opacity, grey=self.grey, cmap=self.cmap,
            label=label, gt=gt, detections=dets, classes=self.classes,
            selected=self.class_name, scale=self.scale,
        )  # fmt: skip
        self._map_stats = (float(heat.mean()), float(heat.max()))
        return figure_to_png(fig)

    def display_factor(self, height: int, width: int) -> float:
        """Image px shown per frame px before ``scale``: 1, or less for a frame whose longest
        side times ``scale`` exceeds ``max_size``."""
        if self.max_size is None:
            return 1.0
        return min(1.0, self.max_size / (max(height, width) * self.scale))

    def refresh(self) -> None:
        """Re-render into the image; a provider error is shown in ``status`` and re-raised."""
        try:
            png = self.render()
        except Exception as error:
            self.status.value = f"<span style='color:#b00020'>{html.escape(str(error))}</span>"
            raise
        self.status.value = ""
        self.image.value = png
        fid = self.frame_id
        text = self.caption_fn(fid) if self.caption_fn is not None else f"frame {fid}"
        mean, top = self._map_stats
        self.caption.value = (
            f"{html.escape(text)} &nbsp; <small>{self.class_name} {self.source}: "
            f"mean {mean:.4g}, max {top:.4g}</small>"
        )

    # construction from an ensemble -----------------------------------------------------
    @classmethod
    def from_ensemble(
        cls,
        source: Any,
        members: Any,
        frame_ids: Sequence[int],
        classes: Sequence[str] | None = None,
        cache_size: int = 32,
        **kwargs: Any,
    ) -> HeatmapViewer:
        """A viewer whose maps, ground truth and mean detections come from ``members`` (an
        ``Ensemble`` or a list of ``UNetDetector``) run on ``source.frame(id)``, computed on
        demand and LRU-cached (``viewer.maps`` is the ``EnsembleMaps``).

        ``source``: the synthetic ``World``, or a ``Pool`` / pool source of own images,
        shown at their original size (``scale=1``, ``max_size=OWN_MAX_SIZE`` unless given),
        without ground truth. ``classes``: default the ensemble's own class names.
        """
        maps = EnsembleMaps(source, members, classes, cache_size=cache_size)
        if maps.letterboxed:
            kwargs.setdefault("scale", 1)
            kwargs.setdefault("max_size", OWN_MAX_SIZE)
        viewer = cls(
            frame_ids, maps.image, maps.heatmap, maps.classes,
            gt_fn=maps.gt if maps.has_gt else None, detections_fn=maps.detections,
            member_probs_fn=maps.member_probs, n_members=maps.n_members,
            caption_fn=maps.caption, **kwargs,
        )  # fmt: skip
        viewer.maps = maps
        return viewer
