"""The simulated oracle: a labeller that reveals the world's ground truth (experiments only).

Only this labeller and the simulated curator (``alkit.query.baselines.manual_curation``) read
ground truth; everything else sees images and metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

from alkit.data.classes import CLASSES
from alkit.data.datasets import FrameSource
from alkit.data.labels import CostModel, LabelledBatch, LabelledFrame, check_frame_ids, frame_meta
from alkit.data.version_tables import world_dict
from alkit.data.versions import sim_uri
from alkit.errors import ConfigError, DataError


class OracleLabeller:
    """A simulated annotator: reveals the world's ground truth, charged by ``cost``.

    Args:
        world: the world the frames come from (``frame(id)`` and a ``config``).
        cost: the cost model; every frame costs ``cost.seconds(number of boxes)``.
        classes: class names the world's labels index into.
    """

    def __init__(
        self, world: FrameSource, cost: CostModel | None = None, classes: Sequence[str] = CLASSES
    ) -> None:
        self.world = world
        self.world_config = world_dict(world)
        if self.world_config is None:
            raise ConfigError("OracleLabeller: the world has no config (world.config.to_dict())")
        self.cost = cost or CostModel()
        self.classes = tuple(classes)

    def __repr__(self) -> str:
        return f"OracleLabeller(cost={self.cost})"

    def label(self, frame_ids: Sequence[int]) -> LabelledBatch:
        """Ground truth of ``frame_ids`` (in that order), each frame charged by the cost model."""
        labelled = []
        for fid in check_frame_ids(frame_ids, "OracleLabeller.label"):
            frame = self.world.frame(fid)
            if int(frame.frame_id) != fid:
                raise DataError(
                    f"OracleLabeller: asked the world for frame {fid}, got {frame.frame_id}"
                )
            labelled.append(
                LabelledFrame(
                    frame_id=fid,
                    height=frame.height,
                    width=frame.width,
                    boxes=frame.boxes,
                    labels=frame.labels,
                    image_uri=sim_uri(fid),
                    meta=frame_meta(frame),
                    seconds=self.cost.seconds(len(frame.labels)),
                )
            )
        return LabelledBatch(
            tuple(labelled), "oracle", world=self.world_config, classes=self.classes, cost=self.cost
        )


__all__ = ["OracleLabeller"]
