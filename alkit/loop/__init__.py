"""The round: QUERY -> ANNOTATE -> APPEND -> RETRAIN -> EVALUATE, once, for every driver.

``round.py`` composes the stages' own functions (``alkit.query.query_pool``, a labeller,
``alkit.data.lineage.append_batch``, ``alkit.ensemble.retrain.retrain``,
``alkit.evaluate.predict.evaluate_model``) into :func:`run_round` and its two halves,
:func:`acquire` (QUERY -> ANNOTATE -> APPEND) and :func:`learn` (RETRAIN -> EVALUATE).
The A/B test, the rounds, the replicated experiment and its rounds are loops over seeds,
blocks, splits and rounds that call them; the notebook steps call the stages they wrap.
``frames.py`` holds the labelled frames a learner draws from: the version's labels over
images rendered once per world.
"""

from alkit.loop.frames import FrameCache, version_frames
from alkit.loop.round import (
    Acquired,
    Arm,
    Evaluation,
    Learned,
    Learner,
    RoundContext,
    RoundRecord,
    acquire,
    evaluate,
    learn,
    retrain_members,
    run_round,
)

__all__ = [
    "Acquired",
    "Arm",
    "Evaluation",
    "FrameCache",
    "Learned",
    "Learner",
    "RoundContext",
    "RoundRecord",
    "acquire",
    "evaluate",
    "learn",
    "retrain_members",
    "run_round",
    "version_frames",
]
