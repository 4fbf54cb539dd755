"""The notebooks: committed clean, parameters documented with the quick profile's values, and
each one executed through papermill with the ``tiny`` profile (01-05 run in test_pipeline's
``loop`` recipe); one also under ``pytest --nbval-lax``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from alkit.config.profiles import profile_parameters
from alkit.workflow.pipeline import NOTEBOOKS, run_recipe
from alkit.workflow.recipes import RECIPES

PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
NAMES = [p.stem for p in PATHS]


pytestmark = pytest.mark.usefixtures("one_thread_module")


def _outputs_of_types(path: Path) -> dict[str, set[str]]:
    """Per code cell id, the mime types (and ``error``) of its outputs."""
    nb = nbformat.read(path, as_version=4)
    found = {}
    for cell in nb.cells:
        kinds = set()
        for out in cell.get("outputs", []):
            kinds |= {"error"} if out.output_type == "error" else set(out.get("data", {}))
        found[cell.get("id")] = kinds
    return found


def test_every_notebook_of_every_recipe_exists():
    expected = {s.notebook for steps in RECIPES.values() for s in steps}
    assert expected | {"20_explore_selection", "50_label_qa"} == set(NAMES)


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_committed_notebook_is_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    # logic-free: no loops, conditionals or definitions in code cells
    for cell in nb.cells:
        if cell.cell_type == "code":
            body = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
            banned = (ast.For, ast.While, ast.If, ast.FunctionDef, ast.ClassDef, ast.Lambda)
            assert not [n for n in ast.walk(ast.parse(body)) if isinstance(n, banned)], cell.id


@pytest.mark.parametrize("path", PATHS, ids=NAMES)
def test_parameters_are_documented_plain_values_with_quick_defaults(path: Path):
    params = papermill.inspect_notebook(str(path))
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [
        n.targets[0].id if isinstance(n, ast.Assign) else n.target.id
        for n in ast.parse(cell.source).body
    ]
    assert list(params) == assigned, "every line of the parameters cell is one parameter"
    recipes = [r for r, steps in RECIPES.items() if path.stem in {s.notebook for s in steps}]
    recipe = recipes[0] if recipes else ""
    quick = profile_parameters("quick", recipe=recipe)  # a recipe's own profile values too
    for name, p in params.items():
        assert p["help"], f"{name} has no help comment"
        value = ast.literal_eval(p["default"])  # plain values only
        if name in quick:
            assert value == quick[name], f"{name}: default {value!r}, quick profile {quick[name]!r}"


def test_help_notebook_lists_parameters_with_their_meaning():
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(NOTEBOOKS / "02_query.ipynb")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "budget: int (default 100)" in done.stdout
    assert "frames each method may send to labelling" in done.stdout


# executed with the tiny profile ---------------------------------------------------------------
# ``ab_run`` (the tiny ``ab`` run, shared with test_browser) is in conftest.py


@pytest.mark.slow
def test_ab_test_notebook_ends_in_the_seed_tables_and_figures(ab_run):
    step = ab_run.step("10_ab_test")
    outputs = _outputs_of_types(step.notebook)
    assert not any("error" in kinds for kinds in outputs.values())
    for cell in ("table-night", "table-global", "gains", "selections"):
        assert "text/html" in outputs[cell], cell
    for cell in ("figure-night", "figure-global", "selection-figure"):
        assert "image/png" in outputs[cell], cell
    assert "application/vnd.jupyter.widget-view+json" in outputs["abtable"]
    for name in ("summary.csv", "gains.csv", "tables.txt", "relative_wmap_night.png"):
        assert (step.out_dir / name).exists(), name
    assert step.html.exists()


@pytest.mark.slow
def test_explore_notebook_opens_the_ab_folder(ab_run, tmp_path: Path):
    out = tmp_path / "20.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "20_explore_selection.ipynb"),
        str(out),
        progress_bar=False,
        parameters={
            "ab_run_dir": str(ab_run.step("10_ab_test").out_dir),
            "out_dir": str(tmp_path / "explore"),
            "page_size": 4,
        },
        cwd=str(tmp_path),
    )
    outputs = _outputs_of_types(out)
    for cell in ("explorer", "viewer", "abtable"):
        assert "application/vnd.jupyter.widget-view+json" in outputs[cell], cell


@pytest.mark.slow
def test_rounds_notebook_draws_learning_curves(tmp_path: Path):
    result = run_recipe("rounds", tmp_path / "rounds", "tiny", progress=False, log=lambda _: None)
    step = result.step("30_active_learning_loop")
    outputs = _outputs_of_types(step.notebook)
    assert "image/png" in outputs["figure"]
    assert "application/vnd.jupyter.widget-view+json" in outputs["widget"]
    curves = (step.out_dir / "curves.csv").read_text().splitlines()
    assert curves[0] == (
        "method,round,labelled_frames,new_frames,test_set,class,metric,value,"
        "n_gt,gain,ci_low,ci_high,version"
    )  # the one learning-curve schema
    assert {line.split(",")[0] for line in curves[1:]} == {"AL", "RANDOM", "MANUAL"}


@pytest.mark.slow
def test_experiment_recipe_writes_verdicts_and_the_figure(tmp_path: Path):
    overrides = {"arms": ["AL", "RANDOM-night", "MANUAL"]}  # the tiny profile, three arms
    result = run_recipe("experiment", tmp_path / "exp", "tiny", overrides, progress=False,
                        log=lambda _: None)  # fmt: skip
    step = result.step("40_experiment")
    outputs = _outputs_of_types(step.notebook)
    assert not any("error" in kinds for kinds in outputs.values())
    assert "image/png" in outputs["exp40-08"]  # the differences with their intervals
    verdicts = (step.out_dir / "verdicts.csv").read_text().splitlines()
    assert verdicts[0].startswith("comparison,class,metric,diff,ci_low,ci_high,verdict,margin")
    names = {line.split(",")[0] for line in verdicts[1:]}
    assert names == {"AL vs RANDOM-night", "AL vs MANUAL", "RANDOM-night vs REFERENCE",
                     "MANUAL vs RANDOM-night"}  # fmt: skip
    assert (step.out_dir / "test_sets.csv").exists()
    # the learning curves start from this experiment's models (recipe curves, notebook 41)
    overrides = {"experiment_dir": str(step.out_dir), "round_arms": ["AL", "RANDOM-night"]}
    rounds = run_recipe("curves", tmp_path / "curves", "tiny", overrides, progress=False,
                        log=lambda _: None).step("41_learning_curves")  # fmt: skip
    outputs = _outputs_of_types(rounds.notebook)
    assert not any("error" in kinds for kinds in outputs.values())
    assert "image/png" in outputs["curves41-07"]  # the curves with their intervals
    curves = pd.read_csv(rounds.out_dir / "curves.csv")
    assert set(curves.method) == {"AL", "RANDOM-night"} and set(curves["round"]) == {0, 1, 2}
    assert (step.out_dir / "world_0" / "rounds" / "evaluations").is_dir()
    # label efficiency from the same experiment (recipe efficiency, notebook 42)
    overrides = {"experiment_dir": str(step.out_dir), "curve_arms": ["AL", "RANDOM-night"]}
    eff = run_recipe("efficiency", tmp_path / "eff", "tiny", overrides, progress=False,
                     log=lambda _: None).step("42_label_efficiency")  # fmt: skip
    outputs = _outputs_of_types(eff.notebook)
    assert not any("error" in kinds for kinds in outputs.values())
    assert "image/png" in outputs["eff42-07"]  # the curves with their intervals
    table = pd.read_csv(eff.out_dir / "efficiency.csv")
    assert set(table.arm) == {"AL", "RANDOM-night"} and set(table.budget) == {0, 4, 10}
    assert (step.out_dir / "world_0" / "evaluations" / "block0_ft0_AL_first4.parquet").exists()


@pytest.mark.slow
def test_nbval_lax_runs_a_parameterized_copy(ab_run, tmp_path: Path):
    nb = load_notebook_node(str(NOTEBOOKS / "20_explore_selection.ipynb"))
    params = {
        "ab_run_dir": str(ab_run.step("10_ab_test").out_dir),
        "out_dir": str(tmp_path / "explore"),
        "page_size": 4,
    }
    path = tmp_path / "20_explore_selection.ipynb"
    nbformat.write(parameterize_notebook(nb, params), path)
    assert json.loads(path.read_text())["cells"][2]["metadata"]["tags"] == ["injected-parameters"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
