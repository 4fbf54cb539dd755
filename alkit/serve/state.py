"""What the backend keeps in the run folder, so a killed server restarts where it stopped.

::

    <run>/serve/
        state.json            the labelled head version, the served round, the project
        versions/             the versions store: every annotation appended (lineage)
        rounds/NNN/           a retraining: job.json, version.json, train/, query/, done.json
        qa/                   label QA of each appended annotation (qa-<version>.csv)
        logs/round-NNN.log    what a retraining printed

Every file is written atomically. The versions store is the truth about labels: a version
saved before a kill but not yet in ``state.json`` is found again on restart (a child of the
recorded head), so nothing is lost and nothing appended twice. A round with ``done.json``
is finished; one without is retrained again (its steps resume).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from alkit.data import storage
from alkit.data.versions import list_versions, version_info

STATE = "state.json"


@dataclass
class ServeState:
    """``state.json``: ``base`` (the version the run's ensemble trained on, its hash),
    ``head`` (the newest labelled version), ``round`` (the served round), ``project`` (the
    Label Studio project id the backend is bound to, or ``None``)."""

    base: str
    head: str
    round: int = 0
    project: int | None = None
    rounds: dict = field(default_factory=dict)  # "NNN" -> done.json of each finished round

    @classmethod
    def load(cls, folder: Path) -> ServeState | None:
        path = folder / STATE
        if not path.exists():
            return None
        return cls(**storage.read_json(str(path)))

    def save(self, folder: Path) -> None:
        storage.atomic_write_json(str(folder / STATE), asdict(self))


def round_dir(folder: Path, index: int) -> Path:
    """``<serve>/rounds/NNN``."""
    return folder / "rounds" / f"{index:03d}"


def newest_descendant(root: str, head: str) -> str:
    """The newest version whose parents lead back to ``head`` (``head`` when none): a
    version saved before a kill but not yet recorded."""
    children: dict[str, list[str]] = {}
    for h in list_versions(root):  # oldest first
        parent = version_info(root, h).get("parent")
        if parent:
            children.setdefault(parent, []).append(h)
    current = head
    while children.get(current):
        current = children[current][-1]
    return current


def chain_since(root: str, head: str, ancestor: str) -> list[str]:
    """The versions from ``head`` back to (not including) ``ancestor``, newest first."""
    out, current = [], head
    while current and current != ancestor:
        out.append(current)
        current = version_info(root, current).get("parent")
    return out


__all__ = ["STATE", "ServeState", "chain_since", "newest_descendant", "round_dir"]
