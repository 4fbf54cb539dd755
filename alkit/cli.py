"""Command line: ``python -m alkit <command>`` (also installed as ``alkit``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _world(args: argparse.Namespace) -> int:
    """Render a montage of day / dusk / night frames and print the pool's statistics."""
    import pandas as pd

    from alkit.sim import World, experiment_world
    from alkit.sim.montage import montage
    from alkit.sim.stats import pool_statistics

    start = time.perf_counter()
    world = World(experiment_world(args.profile, seed=args.seed))
    print(f"{world}\n")
    manifest = world.manifest()
    picks = []
    for tod in ("day", "dusk", "night"):
        for route in ("urban", "suburban", "highway"):
            rows = manifest[(manifest.time_of_day == tod) & (manifest.route == route)]
            if len(rows):
                picks.append(int(rows.frame_id.iloc[len(rows) // 3]))
    out = Path(args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = montage([world.frame(i) for i in picks], columns=3, scale=2.6)
    path = out / "world.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)
    pool = world.segment_frame_ids("pool")
    sample = pool[:: max(len(pool) // args.sample, 1)][: args.sample]
    stats = pool_statistics(world, sample)
    with pd.option_context(
        "display.width", 160, "display.precision", 2, "display.max_columns", None
    ):
        print("Frames by segment and time of day:")
        print(pd.crosstab(manifest.segment, manifest.time_of_day, margins=True), "\n")
        print(f"Objects per frame in the pool, by class and size ({len(sample)} frames sampled):")
        print(stats["objects"], "\n")
        print("Objects per frame by class and time of day:")
        print(stats["objects_by_time"], "\n")
        print("Long-tail tags by class:")
        print(stats["tags"], "\n")
    print(f"montage: {path}  ({time.perf_counter() - start:.1f} s)")
    return 0


def _recipe_step(
    args: argparse.Namespace, recipe: str, step: str, extra: dict | None = None, **kwargs: Any
):
    """Run a one-notebook recipe for a command (``demo``, ``experiment``, ``curves``) with its
    ``-p`` and device flags and the command's ``extra`` parameters, streaming the notebook's
    output: the step's ``StepResult``, or ``None`` after printing the error."""
    from alkit.errors import AlkitError
    from alkit.workflow.pipeline import run_recipe
    from alkit.workflow.recipes import parse_assignments

    try:
        overrides = parse_assignments(args.param) | _device_overrides(args) | (extra or {})
        result = run_recipe(recipe, args.run_dir, args.profile, overrides, log_output=True,
                            **kwargs)  # fmt: skip
    except AlkitError as err:
        print(f"alkit {args.command}: {err}", file=sys.stderr)
        return None
    return result.step(step)


def _demo(args: argparse.Namespace) -> int:
    """The main job: the seed's A/B test on the embedded world, as the ``ab`` recipe."""
    from alkit.experiments.reports import ab_report

    start = time.perf_counter()
    step = _recipe_step(args, "ab", "10_ab_test")
    if step is None:
        return 1
    print(ab_report(step.out_dir))
    minutes = (time.perf_counter() - start) / 60
    print(f"\nreport: {step.html}\nrun folder: {step.out_dir}  ({minutes:.1f} min)")
    return 0


def _device_overrides(args: argparse.Namespace) -> dict:
    """``--accelerator`` / ``--devices`` as parameter overrides (where the pool is scored)."""
    from alkit.workflow.recipes import parse_value

    out = {}
    if getattr(args, "accelerator", None) is not None:  # commands without the flags: None
        out["accelerator"] = args.accelerator
    if getattr(args, "devices", None) is not None:
        out["devices"] = parse_value(args.devices)
    return out


def _add_recipe_flags(parser: argparse.ArgumentParser, run_dir: str, param_help: str) -> None:
    """The flags of a command that runs a recipe: ``--profile``, ``--run-dir``, ``-p``."""
    parser.add_argument("--profile", default="quick", choices=["quick", "full", "tiny"])
    parser.add_argument("--run-dir", default=run_dir)
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help=param_help)  # fmt: skip


def _add_device_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accelerator",
        default=None,
        help="where the ensemble scores the pool: auto (a GPU when there is one), cpu, gpu; "
        "default: the profile's",
    )
    parser.add_argument("--devices", default=None, help="devices to score on: N or auto")


def _lineage(args: argparse.Namespace) -> int:
    """Print a version's lineage back to the initial set, one block per version."""
    import json

    from alkit.data.lineage import format_lineage, lineage
    from alkit.errors import AlkitError

    try:
        chain = lineage(args.root, args.version, verify=args.verify)
    except AlkitError as err:
        print(f"alkit lineage: {err}", file=sys.stderr)
        return 1
    print(json.dumps(chain, indent=1, default=str) if args.json else format_lineage(chain))
    return 0


def _run(args: argparse.Namespace) -> int:
    """Run a recipe of notebooks with papermill, cached step by step
    (``alkit.workflow.pipeline``)."""
    from alkit.errors import AlkitError
    from alkit.workflow.pipeline import StepFailed, run_recipe
    from alkit.workflow.recipes import parse_assignments

    run_dir = args.run_dir or f"runs/{args.recipe}"
    try:
        result = run_recipe(
            args.recipe,
            run_dir,
            args.profile,
            parse_assignments(args.param) | _device_overrides(args),
            notebooks_dir=args.notebooks,
            kernel_name=args.kernel,
            progress=not args.no_progress,
            rerun=args.rerun,
        )
    except StepFailed as err:
        if not err.error.startswith("LabelsPending"):
            print(f"alkit run: {err}", file=sys.stderr)
            return 1
        print(_labels_pending(args, run_dir, err.error), file=sys.stderr)
        return 3
    except AlkitError as err:
        print(f"alkit run: {err}", file=sys.stderr)
        return 1
    ran = sum(s.status == "ran" for s in result.steps)
    print(f"{ran} step(s) ran, {len(result.steps) - ran} cached; run record: {result.record}")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    """The replicated experiment (recipe ``experiment``, notebook ``40_experiment``):
    paired differences with 95% confidence intervals and verdicts."""
    from alkit.experiments.reports import experiment_report

    start = time.perf_counter()
    step = _recipe_step(args, "experiment", "40_experiment", progress=not args.no_progress)
    if step is None:
        return 1
    print(experiment_report(step.out_dir))
    minutes = (time.perf_counter() - start) / 60
    print(f"\nreport: {step.html}\nrun folder: {step.out_dir}  ({minutes:.1f} min)")
    return 0


def _from_experiment(
    args: argparse.Namespace, recipe: str, notebook: str, report: Callable[[Path], str]
) -> int:
    """Run a one-notebook recipe on a finished experiment's folder (``--experiment-dir``) and
    print its ``report``."""
    start = time.perf_counter()
    extra = {"experiment_dir": str(Path(args.experiment_dir).resolve())}
    step = _recipe_step(args, recipe, notebook, extra, progress=not args.no_progress)
    if step is None:
        return 1
    print(report(step.out_dir))
    minutes = (time.perf_counter() - start) / 60
    print(f"\nreport: {step.html}\nrun folder: {step.out_dir}  ({minutes:.1f} min)")
    return 0


def _curves(args: argparse.Namespace) -> int:
    """Learning curves from an experiment's models (recipe ``curves``, notebook
    ``41_learning_curves``): gains per round with 95% confidence intervals, the label share."""
    from alkit.experiments.reports import curves_report

    return _from_experiment(args, "curves", "41_learning_curves", curves_report)


def _efficiency(args: argparse.Namespace) -> int:
    """Label efficiency, the new-frame share and the score's diagnostics of a finished
    experiment (recipe ``efficiency``, notebook ``42_label_efficiency``)."""
    from alkit.experiments.reports import efficiency_report

    return _from_experiment(args, "efficiency", "42_label_efficiency", efficiency_report)


def _add_from_experiment(
    sub: Any, name: str, func: Callable, help_text: str, params_help: str
) -> None:
    """A command that runs a recipe on a finished experiment's folder (``--experiment-dir``)."""
    cmd = sub.add_parser(name, help=help_text)
    _add_recipe_flags(cmd, f"runs/{name}", params_help)
    cmd.add_argument("--experiment-dir", default="runs/experiment/out/40_experiment",
                     help="the experiment's folder (alkit experiment's run folder + "
                     "out/40_experiment)")  # fmt: skip
    cmd.add_argument("--no-progress", action="store_true", help="no progress bars")
    cmd.set_defaults(func=func)


def _labels_pending(args: argparse.Namespace, run_dir: str, error: str) -> str:
    """What to do when the run stopped for labels: where the export is, how to resume."""
    import shlex
    from pathlib import Path

    export = Path(run_dir).resolve() / "to_label"
    kept = [p for p in args.param if not p.startswith("labels=")]
    command = ["python", "-m", "alkit", "run", args.recipe, "--run-dir", run_dir,
               "--profile", args.profile]  # fmt: skip
    command += [w for p in kept for w in ("-p", p)] + ["-p", "labels=EXPORT.json"]
    return (
        f"alkit run: stopped for labelling ({error.split(' frames are', 1)[0].split()[-1]} "
        "frames).\n"
        f"  The selected frames are exported to {export}/:\n"
        "    tasks.json           Label Studio tasks, with the ensemble's boxes as predictions\n"
        "    labeling_config.xml  the Label Studio project's labelling interface\n"
        "    coco.json            the same frames and boxes as COCO, for other tools\n"
        "  Label them (README: 'Use it on your own data'), export the result (Label Studio:\n"
        "  Export -> JSON; or a COCO file), then resume; finished steps are reused:\n"
        f"    {shlex.join(command)}"
    )


# -- the loop inside a labelling tool (issue 20): serve, qa ------------------------------------


def _serve(args: argparse.Namespace) -> int:
    """The Label Studio ML backend on a loop run folder (``alkit.serve``)."""
    from alkit.errors import AlkitError
    from alkit.serve.app import serve
    from alkit.serve.backend import Backend
    from alkit.serve.labelstudio_api import LabelStudioAPI
    from alkit.workflow.recipes import parse_assignments

    if bool(args.label_studio_url) != bool(args.label_studio_token):
        print("alkit serve: give --label-studio-url and --label-studio-token together",
              file=sys.stderr)  # fmt: skip
        return 2
    client = None
    if args.label_studio_url:
        client = LabelStudioAPI(args.label_studio_url, args.label_studio_token)
    try:
        backend = Backend(args.run_dir, parse_assignments(args.param), client)
    except AlkitError as err:
        print(f"alkit serve: {err}", file=sys.stderr)
        return 1
    health = backend.health()
    print(f"alkit serve: {health['model_version']} on http://{args.host}:{args.port} "
          f"(run {Path(args.run_dir).resolve()}, version {health['version'][:12]}); connect it "
          "in Label Studio: project Settings -> Model -> Connect Model", flush=True)  # fmt: skip
    serve(backend, args.host, args.port)
    return 0


def _qa(args: argparse.Namespace) -> int:
    """Label QA of a labels file against a loop run's ensemble (``alkit.serve.label_qa``)."""
    import pandas as pd

    from alkit.annotate.qa import flagged_boxes
    from alkit.errors import AlkitError
    from alkit.serve.label_qa import qa_labels

    try:
        table, record = qa_labels(args.run_dir, args.labels, args.out)
    except AlkitError as err:
        print(f"alkit qa: {err}", file=sys.stderr)
        return 1
    flagged = flagged_boxes(table)
    held = table.drop_duplicates("frame_id").held_out
    print(f"{table.frame_id.nunique()} frames ({int(held.sum())} the ensemble did not train on), "
          f"{len(flagged)} flagged boxes:")  # fmt: skip
    columns = ["frame_id", "kind", "category", "predicted_class", "score", "x", "y", "w", "h"]
    with pd.option_context("display.width", 160, "display.max_rows", 40):
        print(flagged[columns].round(3).to_string(index=False) if len(flagged) else "(none)")
    out = Path(args.out) if args.out else Path(args.run_dir) / "qa" / "qa.csv"
    print(f"table: {out}\nlineage: {record}")
    return 0


def _add_serve_commands(sub: Any) -> None:
    """``serve`` and ``qa``."""
    srv = sub.add_parser(
        "serve", help="Label Studio ML backend on a loop run folder: predictions ordered for "
        "active learning, annotations appended, retraining in the background",
    )  # fmt: skip
    srv.add_argument("--run-dir", required=True, help="a run folder of `alkit run loop`")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=9090)
    srv.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="retrain_every (10), min_score (0.3), project (Label Studio project "
                     "id), qa (true), or a TRAIN / QUERY parameter of the run for retrainings, "
                     "e.g. -p retrain_every=5")  # fmt: skip
    srv.add_argument("--label-studio-url", default="",
                     help="Label Studio's address (http://localhost:8080), to push retrained "
                     "models' predictions and read its images")  # fmt: skip
    srv.add_argument("--label-studio-token", default="", help="a Label Studio API token")
    srv.set_defaults(func=_serve)
    qa = sub.add_parser(
        "qa", help="label QA: the boxes of a labels file the ensemble strongly disagrees with "
        "(missed objects, class swaps, bad locations; cleanlab's scores)",
    )  # fmt: skip
    qa.add_argument("--run-dir", required=True, help="a run folder of `alkit run loop`")
    qa.add_argument("--labels", required=True, help="a Label Studio JSON export or COCO file")
    qa.add_argument("--out", default=None, help="the table (.csv, .parquet); default "
                    "<run-dir>/qa/qa.csv")  # fmt: skip
    qa.set_defaults(func=_qa)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    world = sub.add_parser("world", help="render the synthetic world and print its statistics")
    world.add_argument("--profile", default="quick", choices=["quick", "full"])
    world.add_argument("--seed", type=int, default=0)
    world.add_argument("--run-dir", default="runs/world")
    world.add_argument("--sample", type=int, default=600, help="pool frames to render for stats")
    world.set_defaults(func=_world)
    demo = sub.add_parser("demo", help="the A/B test on the embedded world (the ab recipe)")
    _add_recipe_flags(demo, "runs/demo", "set an A/B parameter, e.g. -p world_seed=1")
    _add_device_flags(demo)
    demo.set_defaults(func=_demo)
    trace = sub.add_parser(
        "lineage", help="print a dataset version's chain back to the initial set"
    )
    trace.add_argument("version", help="version hash (or a unique prefix of >= 4 characters)")
    trace.add_argument("--root", required=True, help="the versions store (path or fsspec URL)")
    trace.add_argument("--verify", action="store_true", help="reload every version, check hashes")
    trace.add_argument("--json", action="store_true", help="print the chain as JSON")
    trace.set_defaults(func=_lineage)
    from alkit.workflow.recipes import RECIPES

    steps = {
        name: ", ".join(dict.fromkeys(st.notebook[:2] for st in r)) for name, r in RECIPES.items()
    }
    names = ", ".join(RECIPES)
    run = sub.add_parser("run", help=f"run a recipe of notebooks ({names}), cached by step")
    run.add_argument(
        "recipe",
        choices=list(RECIPES),
        metavar="recipe",
        help="; ".join(f"{n} (notebooks {s})" for n, s in steps.items()),
    )
    run.add_argument("--profile", default="quick", choices=["quick", "full", "tiny"])
    run.add_argument("--run-dir", default=None, help="run folder (default runs/<recipe>)")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a notebook parameter (JSON value, else a string); STEP.KEY for "
        "one step only, e.g. -p budget=50 -p 02_query.seed=1",
    )
    run.add_argument(
        "--rerun",
        action="append",
        default=[],
        metavar="STEP",
        help="run STEP afresh even if cached ('all': every step)",
    )
    run.add_argument("--notebooks", default=None, help="folder of the notebooks")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel to execute them with")
    run.add_argument("--no-progress", action="store_true", help="no papermill progress bars")
    _add_device_flags(run)
    run.set_defaults(func=_run)
    exp = sub.add_parser(
        "experiment", help="every arm over world seeds x pool blocks x fine-tuning seeds, "
        "paired differences with 95%% confidence intervals and verdicts",
    )  # fmt: skip
    _add_recipe_flags(exp, "runs/experiment", "a parameter of notebook 40_experiment: an A/B "
                      "one (e.g. -p budget=50) or world_seeds, pool_blocks, finetune_seeds, "
                      "arms, test_set, margin, n_resamples")  # fmt: skip
    exp.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_device_flags(exp)
    exp.set_defaults(func=_experiment)
    _add_from_experiment(
        sub, "curves", _curves, "learning curves (rounds) of AL, AL-div and RANDOM-night from "
        "an experiment's models, with 95%% confidence intervals", "a parameter of notebook "
        "41_learning_curves: n_rounds, round_arms, round_blocks, round_budget, workers",
    )  # fmt: skip
    _add_from_experiment(
        sub, "efficiency", _efficiency, "label efficiency (each arm's learning curve from "
        "prefixes of its selection), the new-frame share and the score's diagnostics of a "
        "finished experiment", "a parameter of notebook 42_label_efficiency: budgets, "
        "curve_arms, finetune_seeds, sensitivity_arms, new_fraction, only_world_seeds, workers",
    )  # fmt: skip
    _add_serve_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
