"""alkit: scalable active learning for object detection (Haussmann et al.).

The loop: TRAIN an ensemble of U-Net detectors, QUERY an unlabelled pool by ensemble
mutual information, ANNOTATE the selection, APPEND it as a new dataset version. The package
is laid out by those stages (``data``, ``sim``, ``detector``, ``ensemble``, ``query``,
``annotate``, ``evaluate``, then ``experiments`` and ``workflow``); the names a notebook user
needs are importable from ``alkit`` itself, each loaded on first use so ``import alkit`` stays
fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_API: dict[str, str] = {
    # data: frames, pools, versions
    "CLASSES": "alkit.data.classes",
    "SizeBuckets": "alkit.data.classes",
    "Pool": "alkit.data.pool",
    "open_pool": "alkit.data.sources",
    "Letterbox": "alkit.data.letterbox",
    "DatasetVersion": "alkit.data.versions",
    "load_version": "alkit.data.versions",
    "append_batch": "alkit.data.lineage",
    "lineage": "alkit.data.lineage",
    # the synthetic world, one data source
    "World": "alkit.sim",
    "WorldConfig": "alkit.sim",
    "experiment_world": "alkit.sim",
    "world_pool": "alkit.sim.experiment",
    # TRAIN
    "DetectorConfig": "alkit.detector.network",
    "TrainConfig": "alkit.detector.module",
    "EnsembleConfig": "alkit.ensemble.train",
    "train_ensemble": "alkit.ensemble.train",
    "train_members": "alkit.ensemble.train",
    "load_ensemble": "alkit.ensemble.store",
    "RetrainConfig": "alkit.ensemble.retrain",
    "fine_tune": "alkit.ensemble.retrain",
    "train_from_scratch": "alkit.ensemble.retrain",
    # QUERY
    "mutual_information": "alkit.query.acquisition",
    "frame_scores": "alkit.query.acquisition",
    "score_pool": "alkit.query.score",
    "read_scores": "alkit.query.score",
    "round_robin_topk": "alkit.query.round_robin",
    "METHODS": "alkit.query.methods",
    "select_frames": "alkit.query.methods",
    "QueryConfig": "alkit.query.pool_query",
    "ScoringConfig": "alkit.query.pool_query",
    "query_pool": "alkit.query.pool_query",
    "load_selection": "alkit.query.selection",
    # ANNOTATE
    "OracleLabeller": "alkit.annotate.oracle",
    "ToolLabeller": "alkit.annotate.tool",
    "batch_summary": "alkit.annotate.summary",
    # EVALUATE
    "evaluate_detections": "alkit.evaluate.metrics",
    "evaluate_model": "alkit.evaluate.predict",
    # experiments
    "ABConfig": "alkit.experiments.abtest",
    "run_ab_test": "alkit.experiments.abtest",
    "run_rounds": "alkit.experiments.rounds",
    "profile_parameters": "alkit.config.profiles",
    "profile_config": "alkit.experiments.abtest",
    "RunConfig": "alkit.config.tree",
    # the steps behind notebooks 01-05, and recipes of notebooks
    "train_step": "alkit.workflow.steps",
    "query_step": "alkit.workflow.steps",
    "annotate_step": "alkit.workflow.steps",
    "append_step": "alkit.workflow.steps",
    "evaluate_step": "alkit.workflow.steps",
    "run_recipe": "alkit.workflow.pipeline",
    "RunData": "alkit.workflow.run_data",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use."""
    if name not in _API:
        raise AttributeError(f"module 'alkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
