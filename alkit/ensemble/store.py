"""Ensemble records and loading: N detector checkpoints that differ only in their seed.

``alkit.ensemble.train.train_ensemble`` writes, in its ``out_dir``::

    member_00.ckpt  member_00.json   one Lightning checkpoint + record per member
    member_01.ckpt  member_01.json
    ...
    ensemble.json                    the ensemble record: every member's record, in index order

A member record holds the checkpoint's path (relative to the ensemble record's folder, or absolute),
its sha256, the seed, the model config, the train config, the data fingerprint (dataset
version hash, or world config hash + frame count + sha256 of the frame ids) and the classes.
``load_ensemble`` checks every checkpoint's sha256 against the ensemble record and every member's
architecture against member 0, as read from the checkpoint itself (its saved
hyperparameters), before any weights are used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from alkit.data import storage
from alkit.data.storage import file_sha256
from alkit.detector.network import DetectorConfig, DetectorOutput, UNetDetector
from alkit.errors import ConfigError, DataError, IntegrityError

ENSEMBLE_RECORD = "ensemble.json"
FORMAT = 1
#: Fields every member must agree on (beyond the architecture, checked field by field).
SHARED_FIELDS = ("classes", "train_config", "data")


def weights_sha256(model: nn.Module) -> str:
    """sha256 of a model's weights (state-dict tensors in key order): its identity in the
    lineage of selections and versions, the same for a loaded checkpoint and a model in
    memory."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def member_name(index: int) -> str:
    """File stem of member ``index``: ``member_00``."""
    return f"member_{index:02d}"


@dataclass(frozen=True)
class MemberRecord:
    """One trained member, as recorded in ``member_XX.json`` and in the ensemble record.

    ``checkpoint`` is relative to the folder of the record (or absolute); ``metrics`` (final
    logged losses, training time) are informative only.
    """

    index: int
    seed: int
    checkpoint: str
    sha256: str
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    data: dict[str, Any]
    classes: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "member record") -> MemberRecord:
        """Inverse of ``to_dict``; a missing field raises ``DataError`` naming it."""
        try:
            return cls(
                index=int(values["index"]),
                seed=int(values["seed"]),
                checkpoint=str(values["checkpoint"]),
                sha256=str(values["sha256"]),
                model_config=dict(values["model_config"]),
                train_config=dict(values["train_config"]),
                data=dict(values["data"]),
                classes=tuple(values["classes"]),
                metrics=dict(values.get("metrics") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{where}: missing or malformed field {err}") from None


def write_member_record(out_dir: str | os.PathLike, record: MemberRecord) -> Path:
    """Write ``<out_dir>/member_XX.json`` atomically; returns its path."""
    path = Path(out_dir) / f"{member_name(record.index)}.json"
    storage.atomic_write_json(str(path), record.to_dict())
    return path


def read_member_record(out_dir: str | os.PathLike, index: int) -> MemberRecord | None:
    """The record of member ``index`` if it and its checkpoint exist with a matching sha256,
    else ``None`` (not trained yet, or interrupted)."""
    path = Path(out_dir) / f"{member_name(index)}.json"
    if not path.exists():
        return None
    record = MemberRecord.from_dict(storage.read_json(str(path)), where=str(path))
    checkpoint = Path(out_dir) / record.checkpoint
    if not checkpoint.exists() or file_sha256(checkpoint) != record.sha256:
        return None
    return record


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key
    return None


def check_same_architecture(first: MemberRecord, record: MemberRecord, name: str) -> None:
    """Raise ``ConfigError`` naming ``name`` (the member) and the first ``model_config``
    field in which ``record`` differs from ``first``."""
    key = _first_difference(first.model_config, record.model_config)
    if key is not None:
        raise ConfigError(
            f"{name} has model_config field {key!r} = {record.model_config.get(key)!r}, "
            f"member {first.index} has {first.model_config.get(key)!r}; all members need "
            "the same architecture"
        )


def check_compatible(records: Sequence[MemberRecord]) -> None:
    """Raise ``ConfigError`` unless all records share model config, classes, train config
    (seed aside) and data; the message names the member and the first differing field."""
    first = records[0]
    for record in records[1:]:
        name = f"ensemble member {record.index} ({record.checkpoint})"
        check_same_architecture(first, record, name)
        for what in SHARED_FIELDS:
            mine, theirs = getattr(record, what), getattr(first, what)
            if mine != theirs:
                key = _first_difference(mine, theirs) if isinstance(mine, dict) else None
                detail = f" field {key!r}" if key else ""
                raise ConfigError(
                    f"{name} differs from member {first.index} in {what}{detail}: "
                    f"{mine.get(key) if key else mine!r} vs {theirs.get(key) if key else theirs!r}"
                )


def write_ensemble_record(out_dir: str | os.PathLike, records: Sequence[MemberRecord]) -> Path:
    """Write ``<out_dir>/ensemble.json`` (atomically) for ``records``; returns its path.

    Raises:
        ConfigError: no records, duplicate indices, or members that differ in anything but
            their seed (see ``check_compatible``).
    """
    if not records:
        raise ConfigError("an ensemble needs at least one member")
    records = sorted(records, key=lambda r: r.index)
    indices = [r.index for r in records]
    if len(set(indices)) != len(indices):
        raise ConfigError(f"duplicate member indices {indices}")
    check_compatible(records)
    first = records[0]
    record_json = {
        "format": FORMAT,
        "n_members": len(records),
        "classes": list(first.classes),
        "model_config": first.model_config,
        "train_config": first.train_config,
        "data": first.data,
        "members": [r.to_dict() for r in records],
    }
    path = Path(out_dir) / ENSEMBLE_RECORD
    storage.atomic_write_json(str(path), record_json)
    return path


class Ensemble(nn.Module):
    """M detectors in eval mode with one architecture; ``forward`` is ``forward_probs``.

    Attributes:
        members: ``nn.ModuleList`` of ``UNetDetector``.
        config: their shared ``DetectorConfig``.
        classes: class names of the heatmap channels.
        seeds: each member's training seed.
        record_json: the parsed ``ensemble.json``.
    """

    def __init__(
        self,
        members: Sequence[UNetDetector],
        classes: Sequence[str],
        seeds: Sequence[int] = (),
        record_json: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an Ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.config: DetectorConfig = members[0].config
        self.classes = tuple(classes)
        self.seeds = tuple(int(s) for s in seeds)
        self.record_json = record_json or {}
        self.eval()

    def __len__(self) -> int:
        return len(self.members)

    @property
    def train_precision(self) -> str | None:
        """The precision the members trained in (their records' ``train_config``), if known."""
        records = self.record_json.get("members") or [{}]
        return (records[0].get("train_config") or {}).get("precision")

    @property
    def checkpoint_hashes(self) -> list[str]:
        """The members' checkpoint sha256s, as their ``ensemble.json`` records them."""
        return [str(m.get("sha256", "")) for m in self.record_json.get("members") or []]

    @torch.inference_mode()
    def forward_probs(self, images: Tensor) -> Tensor:
        """``images (B, 3, H, W)`` in [0, 1] -> per-member sigmoid heatmaps
        ``(M, B, C, H/s, W/s)``, float32 in [0, 1]."""
        device = next(self.parameters()).device
        images = images.to(device=device, dtype=torch.float32)  # (B, 3, H, W)
        return torch.stack(
            [torch.sigmoid(m(images).heatmap_logits.float()) for m in self.members]
        )  # (M, B, C, h, w)

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_probs(images)

    @torch.inference_mode()
    def mean_output(self, images: Tensor) -> DetectorOutput:
        """The ensemble as one detector (``members_output``'s mean, for ``decode`` /
        ``predict_coco``)."""
        device = next(self.parameters()).device
        return members_output(self.members, images.to(device=device, dtype=torch.float32))[1]


@torch.inference_mode()
def members_output(members: Sequence[nn.Module], images: Tensor) -> tuple[Tensor, DetectorOutput]:
    """One forward pass of every member on ``images (B, 3, H, W)``: their sigmoid heatmaps
    ``(M, B, C, h, w)`` and the ensemble as one detector (logit of the members' mean heatmap
    probability, mean size and offset maps)."""
    outputs = [m(images) for m in members]
    probs = torch.stack([torch.sigmoid(o.heatmap_logits.float()) for o in outputs])
    mean = DetectorOutput(
        heatmap_logits=torch.logit(probs.mean(0), eps=1e-6),  # (B, C, h, w)
        size=torch.stack([o.size.float() for o in outputs]).mean(0),  # (B, 2, h, w)
        offset=torch.stack([o.offset.float() for o in outputs]).mean(0),  # (B, 2, h, w)
    )
    return probs, mean  # (M, B, C, h, w), ...


def _load_checkpoint(path: Path, map_location: Any) -> dict[str, Any]:
    try:
        # The file's sha256 was checked against the ensemble record first; Lightning checkpoints
        # pickle their hyperparameters, so weights_only=False (load only trusted records).
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise IntegrityError(f"{path}: not a readable checkpoint ({err})") from None


def load_ensemble(record_path: str | os.PathLike, map_location: Any = "cpu") -> Ensemble:
    """Load the members listed in an ``ensemble.json``, verified.

    Every checkpoint's sha256 must match the ensemble record; each member's architecture
    (``model_config``) and ``classes`` are read from the checkpoint's saved hyperparameters
    and must equal member 0's.

    Raises:
        IntegrityError: a checkpoint is missing, unreadable or its content hash differs
            (the message names the file).
        ConfigError: a member's architecture or classes differ (names the member and field).
    """
    record_path = Path(record_path)
    record_json = storage.read_json(str(record_path))
    if not isinstance(record_json, dict) or not record_json.get("members"):
        raise DataError(f"{record_path}: no 'members' list (not an ensemble record)")
    records = [
        MemberRecord.from_dict(entry, where=f"{record_path} member {i}")
        for i, entry in enumerate(record_json["members"])
    ]
    models, loaded = [], []
    for record in records:
        path = record_path.parent / record.checkpoint  # absolute paths stay absolute
        if not path.exists():
            raise IntegrityError(f"checkpoint {path} of ensemble member {record.index} is missing")
        digest = file_sha256(path)
        if digest != record.sha256:
            raise IntegrityError(
                f"checkpoint {path} (member {record.index}) has sha256 {digest[:16]}..., the "
                f"ensemble record has {record.sha256[:16]}...: the file was modified or corrupted; "
                "restore it or retrain that member"
            )
        checkpoint = _load_checkpoint(path, map_location)
        hparams = checkpoint.get("hyper_parameters") or {}
        # the checkpoint's own hyperparameters decide, whatever the ensemble record says
        record = replace(
            record,
            model_config=dict(hparams.get("model_config") or record.model_config),
            classes=tuple(hparams.get("classes") or record.classes),
        )
        if loaded:
            first, name = loaded[0], f"ensemble member {record.index} ({path.name})"
            check_same_architecture(first, record, name)
            if record.classes != first.classes:
                raise ConfigError(
                    f"{name} has field 'classes' = {list(record.classes)}, member "
                    f"{first.index} has {list(first.classes)}"
                )
        loaded.append(record)
        model = UNetDetector(DetectorConfig.from_dict(record.model_config))
        state = {
            k.removeprefix("model."): v
            for k, v in checkpoint["state_dict"].items()
            if k.startswith("model.")
        }
        model.load_state_dict(state)
        models.append(model)
    return Ensemble(models, loaded[0].classes, [r.seed for r in loaded], record_json)
