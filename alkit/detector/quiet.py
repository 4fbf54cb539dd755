"""Lightning without its chatter: what alkit's Trainers print is alkit's own.

Lightning logs device lines ("GPU available", "TPU available"), a cloud-logging tip and "fit
stopped" notes at INFO on every ``Trainer``; alkit trains and scores with many small Trainers,
so those lines would drown its own progress. ``quiet_lightning`` raises Lightning's loggers to
WARNING while a Trainer runs: its warnings still show. It also hides one warning that concerns
no user: Lightning's own use of torch's deprecated ``LeafSpec`` (fixed in Lightning, not here),
and the CSV logger's note that a member's log folder is not empty (a member whose training was
interrupted trains again from its start, and its logs with it).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's INFO lines off (warnings on) inside the block."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*LeafSpec.*", module=r"lightning\.pytorch\.utilities\._pytree"
            )
            warnings.filterwarnings(
                "ignore", message=r"Experiment logs directory .* exists and is not empty"
            )
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


__all__ = ["quiet_lightning"]
