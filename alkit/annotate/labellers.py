"""The labellers of ANNOTATE behind one registry: name -> factory of a ``Labeller``.

``make_labeller("oracle", request)`` reveals the world's ground truth;
``"labelstudio"`` / ``"coco"`` export the frames for a tool and import its labels
(:class:`~alkit.annotate.tool.ToolLabeller`). A new labeller is one function registered with
:func:`register_labeller`; callers (the ANNOTATE step) never branch on the name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alkit.annotate.oracle import OracleLabeller
from alkit.annotate.tool import ToolLabeller
from alkit.data.classes import CLASSES
from alkit.data.labels import CostModel, Labeller
from alkit.detector.network import Detections
from alkit.errors import ConfigError


@dataclass(frozen=True)
class LabellerRequest:
    """What a labeller is made from (plain values and the frames' source).

    Attributes:
        source: generates the frames to label (the world, or an own pool's source).
        cost: charges frames without a measured labelling time.
        world: the synthetic world whose ground truth the oracle reveals; ``None`` for own data.
        export_dir: where a tool's labeller exports the frames.
        labels: the tool's finished export (Label Studio JSON or COCO); empty: the default.
        detections: called once when a tool's labeller needs pre-annotations: frame id ->
            the ensemble's mean detections; ``None``: no pre-annotations.
        selection: the selection record the frames came from (its hash, frame ids, scores).
        task_image_url: URL prefix the tool loads images from; empty: their own URLs.
        min_score: pre-annotations keep detections at least this sure.
        classes: the class names the labels index into.
    """

    source: Any
    cost: CostModel
    world: Any = None
    export_dir: str = ""
    labels: str = ""
    detections: Callable[[], Mapping[int, Detections]] | None = None
    selection: Any = None
    task_image_url: str = ""
    min_score: float = 0.3
    classes: tuple[str, ...] = CLASSES


LabellerFactory = Callable[[LabellerRequest], Labeller]
#: name -> factory; fill with :func:`register_labeller`
LABELLERS: dict[str, LabellerFactory] = {}


def register_labeller(*names: str) -> Callable[[LabellerFactory], LabellerFactory]:
    """Register a factory under ``names`` (a decorator)."""

    def register(factory: LabellerFactory) -> LabellerFactory:
        for name in names:
            LABELLERS[name] = factory
        return factory

    return register


def make_labeller(name: str, request: LabellerRequest) -> Labeller:
    """The labeller registered as ``name``, made from ``request``."""
    if name not in LABELLERS:
        raise ConfigError(f"labeller must be one of {sorted(LABELLERS)}, got {name!r}")
    return LABELLERS[name](request)


@register_labeller("oracle")
def oracle_labeller(request: LabellerRequest) -> Labeller:
    """The world's ground truth (experiments only)."""
    if request.world is None:
        raise ConfigError(
            "labeller 'oracle' reads the synthetic world's ground truth; own data is "
            "labelled in a tool: labeller=labelstudio (or coco)"
        )
    return OracleLabeller(request.world, request.cost, request.classes)


@register_labeller("labelstudio", "coco")
def tool_labeller(request: LabellerRequest) -> Labeller:
    """Frames exported for Label Studio (tasks) and other tools (COCO), labels imported."""
    selection = request.selection
    ids = list(selection.frame_ids) if selection is not None else []
    detections = request.detections() if request.detections is not None and ids else None
    scores = None
    if selection is not None and selection.scores:
        scores = dict(zip(ids, selection.scores, strict=True))
    return ToolLabeller(
        request.source,
        str(request.export_dir),
        detections,
        labels_url=request.labels or None,
        cost=request.cost,
        selection=selection.hash if selection is not None else None,
        min_score=request.min_score,
        task_image_url=request.task_image_url or None,
        classes=request.classes,
        scores=scores,
    )


__all__ = [
    "LABELLERS",
    "LabellerFactory",
    "LabellerRequest",
    "make_labeller",
    "oracle_labeller",
    "register_labeller",
    "tool_labeller",
]
