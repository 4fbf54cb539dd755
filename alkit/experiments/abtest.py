"""The seed's A/B test, end to end and repeatable.

1. TRAIN an ensemble on the initial (mostly day) labelled set; its member 0 is REFERENCE
   (fine-tuning: member 0 fine-tuned for the same steps on the initial set alone).
2. QUERY the night pool: score it with the ensemble, select the budget with AL (mutual
   information, round robin over the classes of interest), MANUAL (simulated curation),
   RANDOM (whole pool) and METADATA (night tag, then random).
3. ANNOTATE each selection with the oracle; APPEND each as a dataset version (lineage kept).
4. For each of ``n_splits`` seeded 90/10 splits of every selection: retrain on initial + the
   90% part (fine-tune from REFERENCE, or from scratch), evaluate every model and REFERENCE on
   the global test set, the held-out night test set, the union of the AL and MANUAL 10% parts
   (the seed's night test) and the MANUAL 10% part.
5. Tables: per class of interest, wMAP, mAP large / medium, relative improvement over
   REFERENCE (mean and spread over splits), AL gain / MANUAL gain, objects per class and
   sessions per selection, labelling cost; figures like the seed's.

Every step writes into the run folder and is skipped when its output is there, so an
interrupted run resumes. All randomness comes from the config's seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from torch.utils.data import Dataset, Subset

from alkit.annotate.oracle import OracleLabeler
from alkit.annotate.summary import batch_summary
from alkit.data import storage
from alkit.data.classes import CLASSES
from alkit.data.datasets import CachedFrames, VirtualFrames
from alkit.data.labels import LabelledBatch
from alkit.data.lineage import append_batch
from alkit.data.versions import DatasetVersion, to_frames_dataset
from alkit.detector.module import TrainConfig
from alkit.detector.network import DetectorConfig, UNetDetector
from alkit.ensemble.datamodule import DetectionDataModule
from alkit.ensemble.retrain import retrain
from alkit.ensemble.store import Ensemble, load_ensemble
from alkit.ensemble.train import train_ensemble
from alkit.errors import ConfigError, check_known_fields
from alkit.evaluate.test_sets import evaluation_sets, evaluation_table
from alkit.experiments.tables import (
    REFERENCE,
    RESULT_COLUMNS,
    cv_splits,
    gain_ratio,
    relative_bar_figure,
    seed_table,
    selection_figure,
    summary_table,
)
from alkit.query.methods import METHODS, pool_frames, select_frames
from alkit.query.score import read_scores, score_pool
from alkit.query.selection import SelectionManifest
from alkit.sim import World, experiment_world
from alkit.sim.experiment import initial_version

METRICS = ("wMAP", "mAP_large", "mAP_medium", "AP50", "AP")
TEST_SETS = ("global", "night_heldout", "night", "manual")


#: The quick profile's schedule: 4 epochs of the 2,000 initial frames (500 steps of 16) in
#: bfloat16, channels-last by default (about 1.2 min a member on 2 CPU cores).
QUICK_TRAIN = {"max_epochs": 4, "precision": "bf16-mixed"}


@dataclass(frozen=True)
class ABConfig:
    """Everything that determines an A/B run (plain values, papermill-friendly).

    World: ``profile``, ``world_seed``, ``sessions`` (segment sizes, see
    ``experiment_world``). Data: every ``initial_stride``-th initial frame is labelled;
    every ``pool_stride``-th frame of the filtered pool is scored; every ``test_stride``-th
    test frame is in the global test set. Ensemble: ``n_members``, ``model`` (DetectorConfig
    fields), ``train`` (TrainConfig fields). Selection: ``budget`` frames per method,
    ``classes_of_interest``, ``pool_filter`` (AL and MANUAL), ``al_session_cap``,
    ``manual_filters`` (the curator's extra metadata/geo filter), ``manual_subsequence``,
    ``metadata_filters``. Retraining: ``retrain`` = ``"finetune"`` (from REFERENCE, default
    for quick) or ``"scratch"``; ``retrain_steps``, ``retrain_lr``, ``new_fraction``.
    Evaluation: ``n_splits`` x (1 - ``test_fraction``) / ``test_fraction`` splits.
    """

    profile: str = "quick"
    world_seed: int = 0
    sessions: dict = field(default_factory=dict)
    initial_stride: int = 2
    pool_stride: int = 2
    test_stride: int = 4
    n_members: int = 4
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=lambda: dict(QUICK_TRAIN))
    budget: int = 100
    classes_of_interest: tuple[str, ...] = ("person", "bicycle")
    pool_filter: dict = field(default_factory=lambda: {"time_of_day": ["night"]})
    al_session_cap: int | None = None
    manual_filters: dict = field(default_factory=lambda: {"route": ["urban", "suburban"]})
    manual_subsequence: int = 20
    metadata_filters: dict = field(default_factory=lambda: {"time_of_day": ["night"]})
    retrain: str = "finetune"
    retrain_steps: int = 100
    retrain_lr: float = 5e-4
    new_fraction: float = 0.5
    batch_size: int = 16
    n_splits: int = 3
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.retrain not in ("finetune", "scratch"):
            raise ConfigError(f"retrain must be 'finetune' or 'scratch', got {self.retrain!r}")
        unknown = [c for c in self.classes_of_interest if c not in CLASSES]
        if unknown:
            raise ConfigError(f"classes_of_interest {unknown} are not in {list(CLASSES)}")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> ABConfig:
        check_known_fields(cls, values)
        values = dict(values)
        if "classes_of_interest" in values:
            values["classes_of_interest"] = tuple(values["classes_of_interest"])
        return cls(**values)


@dataclass(frozen=True)
class ABResult:
    """Paths and tables of a finished run (all also saved in ``run_dir``)."""

    run_dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    gains: pd.DataFrame
    selections: pd.DataFrame
    figures: dict[str, Path]


class ABRun:
    """One A/B run in ``run_dir``; each method is one step of the protocol."""

    def __init__(self, config: ABConfig, run_dir: str | Path, progress: bool = True,
                 log: Callable[[str], None] = print):  # fmt: skip
        self.config, self.dir, self.progress, self.log = config, Path(run_dir), progress, log
        self.dir.mkdir(parents=True, exist_ok=True)
        saved = self.dir / "ab_config.json"
        if saved.exists() and json.loads(saved.read_text()) != config.to_dict():
            raise ConfigError(f"{saved} holds another configuration; use a new run folder")
        storage.atomic_write_json(str(saved), config.to_dict())
        c = config
        self.world = World(experiment_world(c.profile, seed=c.world_seed, **c.sessions))
        self.model_config = DetectorConfig.from_dict(c.model) if c.model else DetectorConfig()
        self.train_config = TrainConfig.from_dict(c.train) if c.train else TrainConfig()
        self.initial_ids = list(self.world.segment_frame_ids("initial"))[:: c.initial_stride]

    # 1 TRAIN ----------------------------------------------------------------------------
    def train(self) -> Ensemble:
        c = self.config
        self.data = DetectionDataModule((self.world, self.initial_ids), c.batch_size,
                                        seed=c.seed, cache=True)  # fmt: skip
        self.log(f"TRAIN {c.n_members} members on {len(self.initial_ids)} initial frames")
        manifest = train_ensemble(c.n_members, self.data, self.model_config, self.train_config,
                                  self.dir / "ensemble", base_seed=c.seed,
                                  enable_progress_bar=self.progress, log=self.log)  # fmt: skip
        self.ensemble = load_ensemble(manifest)
        self.ensemble_hashes = [m["sha256"] for m in self.ensemble.manifest["members"]]
        return self.ensemble

    # 2 QUERY ----------------------------------------------------------------------------
    def query(self) -> dict[str, SelectionManifest]:
        c, world = self.config, self.world
        # the curator watches whole drives; ``pool_stride`` only thins what the ensemble scores
        self.pool, watched, night = pool_frames(world, c.pool_filter, c.pool_stride)
        self.log(f"QUERY score {len(night)} pool frames with {len(self.ensemble)} members")
        score_pool(self.ensemble, world, night.frame_id.tolist(), str(self.dir / "scores"),
                   member_hashes=self.ensemble_hashes, progress=self.progress,
                   precision=self.train_config.precision)  # fmt: skip
        scores = read_scores(str(self.dir / "scores")).merge(night, on="frame_id")
        coi = list(c.classes_of_interest)
        picks = select_frames(
            world, METHODS, c.budget, coi, c.seed, scores, watched, self.pool,
            c.al_session_cap, c.manual_filters, c.manual_subsequence, c.metadata_filters,
        )  # fmt: skip
        self.selections = {}
        for method, table in picks.items():
            params = {"budget": c.budget, "classes": coi, "seed": c.seed}
            sel = SelectionManifest.from_table(
                method.lower(), table, params, self.ensemble_hashes if method == "AL" else ()
            )
            sel.save(str(self.dir / "selections" / f"{method}.json"))
            self.selections[method] = sel
        return self.selections

    # 3 ANNOTATE + 4 APPEND --------------------------------------------------------------
    def annotate(self) -> dict[str, DatasetVersion]:
        oracle = OracleLabeler(self.world)
        initial = initial_version(self.world, self.config.initial_stride)
        root = str(self.dir / "versions")
        self.batches: dict[str, LabelledBatch] = {}
        self.versions: dict[str, DatasetVersion] = {}
        for method, sel in self.selections.items():
            batch = oracle.label(list(sel.frame_ids))
            self.batches[method] = batch
            self.versions[method] = append_batch(root, initial, batch, sel,
                                                 params={"method": method})  # fmt: skip
        analysis = batch_summary(self.batches)
        analysis.to_csv(self.dir / "selection_analysis.csv")
        self.log("ANNOTATE " + ", ".join(f"{m}: {len(b)} frames" for m, b in self.batches.items()))
        return self.versions

    # 5 A/B ------------------------------------------------------------------------------
    def _new_frames(self, method: str) -> tuple[Dataset, dict[int, int]]:
        sel_ids = set(self.selections[method].frame_ids)
        full = to_frames_dataset(self.versions[method], self.world)
        rows = [i for i, fid in enumerate(full.frame_ids) if fid in sel_ids]
        cached = CachedFrames(Subset(full, rows))
        return cached, {fid: i for i, fid in enumerate(cached.frame_ids)}

    def evaluate(self) -> pd.DataFrame:
        c = self.config
        out = self.dir / "ab"
        out.mkdir(exist_ok=True)
        reference: UNetDetector = self.ensemble.members[0]
        fixed = evaluation_sets(self.world, ("global", "night_heldout"), c.test_stride)
        new = {m: self._new_frames(m) for m in METHODS}
        splits = {m: cv_splits(self.selections[m].frame_ids, c.n_splits, c.test_fraction, c.seed)
                  for m in METHODS}  # fmt: skip
        retrain_cfg = self.train_config.to_dict() | {"lr": c.retrain_lr, "warmup_steps": 10}
        for s in range(c.n_splits):
            night = sorted(set(splits["AL"][s][1]) | set(splits["MANUAL"][s][1]))
            manual = splits["MANUAL"][s][1]
            sets = {**fixed,
                    "night": CachedFrames(VirtualFrames(self.world, night)),
                    "manual": CachedFrames(VirtualFrames(self.world, manual))}  # fmt: skip
            for method in (REFERENCE, *METHODS):
                path = out / f"{method}_{s}.parquet"
                if path.exists():
                    continue
                if method == REFERENCE and c.retrain == "scratch":
                    model = reference
                else:
                    # Fine-tuning: REFERENCE gets the same extra steps on the initial data
                    # alone, so a method's gain is its new labels', not the extra training's.
                    if method == REFERENCE:
                        train_part: Dataset = Subset(self.data.dataset, [])
                    else:
                        data, index = new[method]
                        train_part = Subset(data, [index[i] for i in splits[method][s][0]])
                    self.log(f"A/B split {s}: retrain {method} on initial + {len(train_part)}")
                    model = retrain(
                        self.data.dataset, train_part, retrain_cfg, c.retrain_steps,
                        seed=c.seed * 100 + s, batch_size=c.batch_size,
                        init=reference if c.retrain == "finetune" else None,
                        model_config=None if c.retrain == "finetune" else self.model_config,
                        new_fraction=c.new_fraction if c.retrain == "finetune" else None,
                        enable_progress_bar=self.progress,
                    )  # fmt: skip
                table = evaluation_table(model, sets).assign(method=method, split=s)
                frame = table[[*RESULT_COLUMNS, "n_gt"]]
                storage.atomic_write_parquet(frame, str(path))
        results = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))],
                            ignore_index=True)  # fmt: skip
        results.to_csv(self.dir / "results.csv", index=False)
        return results

    # 6 REPORT ---------------------------------------------------------------------------
    def report(self, results: pd.DataFrame) -> ABResult:
        c = self.config
        coi = list(c.classes_of_interest)
        part = results[results["class"].isin(coi)]
        summary = summary_table(part)
        summary.to_csv(self.dir / "summary.csv", index=False)
        gains = gain_ratio(summary)
        gains.to_csv(self.dir / "gains.csv", index=False)
        analysis = pd.read_csv(self.dir / "selection_analysis.csv", index_col=0)
        figures = {}
        for test_set in ("night", "night_heldout", "global"):
            fig = relative_bar_figure(summary, test_set, "wMAP")
            figures[f"relative_wmap_{test_set}"] = self.dir / f"relative_wmap_{test_set}.png"
            fig.savefig(figures[f"relative_wmap_{test_set}"], dpi=110)
        fig = selection_figure(analysis, list(CLASSES))
        figures["selections"] = self.dir / "selections.png"
        fig.savefig(figures["selections"], dpi=110)
        tables = {t: seed_table(summary, t, ["wMAP", "mAP_large", "mAP_medium"]) for t in TEST_SETS}
        text = "".join(f"{t} test set\n{table.to_string()}\n\n" for t, table in tables.items())
        storage.atomic_write_text(str(self.dir / "tables.txt"), text)
        return ABResult(self.dir, results, summary, gains, analysis, figures)


def run_ab_test(config: ABConfig | dict, run_dir: str | Path, progress: bool = True,
                log: Callable[[str], None] = print) -> ABResult:  # fmt: skip
    """Run (or resume) the whole A/B protocol in ``run_dir``; see the module docstring."""
    config = config if isinstance(config, ABConfig) else ABConfig.from_dict(config)
    run = ABRun(config, run_dir, progress, log)
    run.train()
    run.query()
    run.annotate()
    return run.report(run.evaluate())


__all__ = ["ABConfig", "ABResult", "ABRun", "run_ab_test"]
