"""A selection, written down: which frames, picked how, by which ensemble.

Every selection (active learning or a baseline) is saved as one JSON manifest whose content
hash later versions of the data set record as their lineage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import pandas as pd

from alkit.data import storage
from alkit.errors import DataError, IntegrityError


@dataclass(frozen=True)
class SelectionRecord:
    """Frames chosen for labelling.

    Attributes:
        method: the selection method's name in lower case (``al``, ``manual``, ``random``,
            ``metadata``, or your own).
        frame_ids: in pick order.
        scores: per frame (the score of the class it was picked for), or empty.
        picked_for: per frame, the class whose turn picked it (AL), or empty.
        params: the selection's parameters (budget, classes, filters, seed, ...).
        ensemble: content hashes of the ensemble's checkpoints (empty for baselines).
        created: UTC time; not part of the hash.
    """

    method: str
    frame_ids: tuple[int, ...]
    scores: tuple[float, ...] = ()
    picked_for: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    ensemble: tuple[str, ...] = ()
    created: str = ""

    def __post_init__(self) -> None:
        ids = list(self.frame_ids)
        if len(set(ids)) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()[:5].tolist()
            raise DataError(f"selection {self.method!r}: duplicate frame ids {dup}")
        for name in ("scores", "picked_for"):
            values = getattr(self, name)
            if values and len(values) != len(ids):
                raise DataError(
                    f"selection {self.method!r}: {name} has {len(values)} entries "
                    f"for {len(ids)} frames"
                )

    @property
    def hash(self) -> str:
        """sha256 of the content (everything but ``created``)."""
        content = {k: v for k, v in asdict(self).items() if k != "created"}
        blob = json.dumps(content, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    @classmethod
    def from_table(cls, method: str, picks: pd.DataFrame, params: dict, ensemble=()):
        """From a selection table with ``frame_id`` (and ``score``, ``picked_for`` if any)."""
        return cls(
            method=method,
            frame_ids=tuple(int(i) for i in picks.frame_id),
            scores=tuple(float(s) for s in picks["score"]) if "score" in picks else (),
            picked_for=tuple(str(c) for c in picks["picked_for"]) if "picked_for" in picks else (),
            params=dict(params),
            ensemble=tuple(ensemble),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def save(self, url: str) -> str:
        """Write atomically as JSON (with its hash); returns the hash."""
        storage.atomic_write_json(url, {**asdict(self), "hash": self.hash})
        return self.hash


def load_selection(url: str) -> SelectionRecord:
    """Read a manifest and check its recorded hash."""
    raw = storage.read_json(url)
    recorded = raw.pop("hash", None)
    for key in ("frame_ids", "scores", "picked_for", "ensemble"):
        raw[key] = tuple(raw.get(key, ()))
    try:
        manifest = SelectionRecord(**raw)
    except TypeError as err:
        raise DataError(f"{url}: not a selection manifest ({err})") from None
    if recorded != manifest.hash:
        raise IntegrityError(f"{url}: content does not match its recorded hash (edited?)")
    return manifest
