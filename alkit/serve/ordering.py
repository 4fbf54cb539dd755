"""The queue's order: a task score that Label Studio's lowest-first order turns into AL's.

AL takes turns over the classes of interest, each turn the best frame left of that class
(``alkit.query.round_robin``). A frame's **queue position** is where it first appears in those
interleaved per-class rankings: ``min over classes c_j of rank_c(frame) * K + j`` (``K``
classes, ``rank_c`` the number of scored pool frames with a higher score of class ``c``). The
task score is ``position / (N * K)`` in ``[0, 1)`` over the ``N`` scored frames: lowest first
(Label Studio's "Uncertainty sampling", or the data manager sorted by prediction score) is
AL's order, the most informative frame first. A frame scored on the fly gets the position it
would take among the pool's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alkit.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class QueueOrder:
    """The pool's per-class scores, sorted: ``scores[j]`` ``(N,)`` descending for class
    ``classes[j]``."""

    classes: tuple[str, ...]
    scores: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, table: pd.DataFrame, classes: Sequence[str]) -> QueueOrder:
        """From a score table (``frame_id`` + one column per class, ``read_scores``)."""
        missing = [c for c in classes if c not in table.columns]
        if missing or not len(classes):
            raise ConfigError(f"scores have no column for classes {missing or list(classes)}")
        if not len(table):
            raise DataError("the pool's score table is empty: nothing to order by")
        cols = [np.sort(table[c].to_numpy(np.float64))[::-1] for c in classes]  # K x (N,)
        return cls(tuple(classes), tuple(cols))

    @property
    def n(self) -> int:
        return len(self.scores[0])

    def position(self, frame_scores: Mapping[str, float]) -> tuple[int, str]:
        """The queue position of a frame with ``frame_scores`` (class -> score), and the
        class whose turn gives it (AL's ``picked_for``)."""
        k = len(self.classes)
        best, by = self.n * k, self.classes[0]
        for j, (c, column) in enumerate(zip(self.classes, self.scores, strict=True)):
            higher = int(np.searchsorted(-column, -float(frame_scores[c]), side="left"))
            if higher * k + j < best:
                best, by = higher * k + j, c
        return best, by

    def task_score(self, frame_scores: Mapping[str, float]) -> float:
        """``position / (N * K)``: lowest for the most informative frame."""
        return self.position(frame_scores)[0] / float(self.n * len(self.classes))


__all__ = ["QueueOrder"]
