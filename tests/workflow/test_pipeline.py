"""The notebook pipeline: recipes, profiles, ``-p`` values, cache keys, and the ``loop`` recipe
run end to end with the ``tiny`` profile (cached reruns, dependent reruns, failure + resume)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from alkit.cli import main
from alkit.config.profiles import PROFILES, profile_parameters
from alkit.data.versions import load_version
from alkit.errors import ConfigError
from alkit.experiments.abtest import profile_config
from alkit.workflow.pipeline import StepFailed, kernel_info, run_recipe
from alkit.workflow.recipes import (
    RECIPES,
    Step,
    check_overrides,
    parse_assignments,
    parse_value,
    step_parameters,
)
from alkit.workflow.runfolder import (
    cache_key,
    content_sha256,
    external_inputs,
    logical,
    tree_listing,
)

LOOP = [s.name for s in RECIPES["loop"]]


pytestmark = pytest.mark.usefixtures("one_thread_module")


# units -----------------------------------------------------------------------------------------
def test_parse_values_as_json_else_strings():
    assert parse_value("5") == 5 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value('{"a": [1]}') == {"a": [1]} and parse_value("null") is None
    assert parse_value("full") == "full" and parse_value("runs/x") == "runs/x"
    assert parse_assignments(["budget=5", "02_query.seed=1", "x=a=b"]) == {
        "budget": 5,
        "02_query.seed": 1,
        "x": "a=b",
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["budget"])


def test_profiles_are_the_scales_they_say():
    # known values, written here (not rebuilt from profiles.py): quick is the CPU scale of
    # the seed's setup, full the GPU scale, tiny a smoke test
    quick, full, tiny = (profile_parameters(p) for p in ("quick", "full", "tiny"))
    assert quick["world_profile"] == "quick" and quick["n_members"] == 4
    assert quick["budget"] == 100 and quick["train"] == {} and quick["retrain"] == "finetune"
    assert profile_config("quick").run.ensemble.n_members == 4
    assert full["world_profile"] == "full" and full["n_members"] == 8
    assert full["budget"] == 2000 and full["model"]["width"] == 32
    assert full["retrain"] == "scratch" and full["input_size"] == [384, 640]
    assert profile_config("full").run.scoring.accelerator == "auto"  # a GPU when there is one
    assert tiny["n_members"] == 2 and tiny["budget"] == 10 and tiny["progress"] is False
    assert set(PROFILES) == {"quick", "full", "tiny"}
    with pytest.raises(ConfigError, match="huge"):
        profile_parameters("huge")


def test_recipes_wire_only_upstream_outputs():
    for steps in RECIPES.values():
        seen: set[str] = set()
        for step in steps:
            assert set(step.upstream) <= seen, step
            seen.add(step.name)
    # the loop closes: round 2 trains on the appended version; EVALUATE reads that ensemble
    loop = {step.name: step for step in RECIPES["loop"]}
    assert loop["round2_01_train_ensemble"].notebook == "01_train_ensemble"
    assert loop["round2_01_train_ensemble"].upstream == ("04_append",)
    assert loop["05_evaluate"].upstream == ("round2_01_train_ensemble",)


def test_step_parameters_priority_and_only_declared_names():
    step = Step("02_query", {"data_path": "01_train_ensemble/data.json"})
    values = step_parameters(
        step,
        ["data_path", "budget", "seed", "out_dir", "pool_stride"],
        profile={"budget": 100, "seed": 0, "n_members": 4},
        overrides={"budget": 5, "02_query.seed": 7, "03_annotate.seed": 9},
        wired={"data_path": "/r/w.json", "out_dir": "/r/out/02_query"},
    )
    assert values == {
        "data_path": "/r/w.json",
        "budget": 5,
        "seed": 7,
        "out_dir": "/r/out/02_query",
    }


def test_check_overrides_names_the_problem():
    declared = {"02_query": ["budget", "seed"], "03_annotate": ["seconds_per_box"]}
    check_overrides({"budget": 1, "03_annotate.seconds_per_box": 2.0}, declared, {"out_dir"})
    with pytest.raises(ConfigError, match="no parameter 'budgett'"):
        check_overrides({"budgett": 1}, declared, {"out_dir"})
    with pytest.raises(ConfigError, match="step 03_annotate has no parameter 'budget'"):
        check_overrides({"03_annotate.budget": 1}, declared, {"out_dir"})
    with pytest.raises(ConfigError, match="no step '09_x'"):
        check_overrides({"09_x.budget": 1}, declared, {"out_dir"})
    with pytest.raises(ConfigError, match="set by the pipeline"):
        check_overrides({"out_dir": "/tmp"}, declared, {"out_dir"})


def test_hashes_and_keys(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "a" / "y.tmp-123").write_text("partial")
    assert list(tree_listing(tmp_path / "a")) == ["x.txt"]
    before = content_sha256(tmp_path / "a")
    (tmp_path / "a" / "x.txt").write_text("y")
    assert content_sha256(tmp_path / "a") != before
    run = tmp_path / "run"
    assert logical(str(run / "out" / "s"), run) == "{run}/out/s"
    assert logical(str(tmp_path / "run2" / "s"), run) == str(tmp_path / "run2" / "s")
    params = {"ab_run_dir": str(tmp_path / "a"), "out_dir": str(run / "out"), "budget": 3}
    inputs = external_inputs(params, run, skip={"out_dir"})
    assert list(inputs) == ["ab_run_dir"] and inputs["ab_run_dir"]["sha256"] == content_sha256(
        tmp_path / "a"
    )
    key = cache_key("nb", {"budget": 3}, inputs)
    # the key does not depend on the order parameters are given in
    assert cache_key("nb", {"a": 1, "b": 2}, inputs) == cache_key("nb", {"b": 2, "a": 1}, inputs)
    assert key != cache_key("nb", {"budget": 4}, inputs) != cache_key("nb2", {"budget": 3}, inputs)


def test_kernel_runs_this_environment():
    info = kernel_info("python3")
    assert info["python"] == sys.executable, info
    with pytest.raises(ConfigError, match="ipykernel install --sys-prefix"):
        kernel_info("no-such-kernel-here")


def test_bad_requests_fail_before_running_anything(tmp_path: Path, capsys):
    with pytest.raises(ConfigError, match="budgett"):
        run_recipe("loop", tmp_path / "r", "tiny", {"budgett": 3}, progress=False)
    assert not (tmp_path / "r" / "run.json").exists()
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"recipe": "ab", "steps": {}}))
    with pytest.raises(ConfigError, match="holds a run of recipe 'ab'"):
        run_recipe("loop", tmp_path / "r", "tiny", progress=False)
    with pytest.raises(ConfigError, match="rerun: no step"):
        run_recipe("ab", tmp_path / "r2", "tiny", rerun=["02_query"], progress=False)
    assert main(["run", "loop", "--run-dir", str(tmp_path / "r3"), "-p", "budgett=3"]) == 1
    assert "no parameter 'budgett'" in capsys.readouterr().err


# the loop recipe end to end ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pipeline") / "loop"
    result = run_recipe("loop", run_dir, "tiny", progress=False, log=lambda _: None)
    return run_dir, result


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the finished run in another place (its cache must still hold)."""
    copy = tmp_path / "moved"
    shutil.copytree(run_dir, copy)
    return copy


def _ran(result) -> list[str]:
    return [s.name for s in result.steps if s.status == "ran"]


@pytest.mark.slow
def test_loop_runs_every_step_into_the_run_folder(loop_run):
    run_dir, result = loop_run
    assert _ran(result) == LOOP
    run_record = json.loads((run_dir / "run.json").read_text())
    assert run_record["status"] == "done" and run_record["recipe"] == "loop"
    assert run_record["lineage"]["kernel"]["python"] == sys.executable
    for name in LOOP:
        step = run_record["steps"][name]
        assert step["status"] == "done" and step["seconds"] > 0 and step["outputs"]
        assert (run_dir / f"steps/{name}.ipynb").exists()
        assert "<html" in (run_dir / f"steps/{name}.html").read_text()[:2000].lower()
        assert step["parameters"]["out_dir"] == f"{{run}}/out/{name}"
    assert not list((run_dir / "steps").glob("*.running.ipynb"))
    assert not list((run_dir / "steps").glob("*.failed.ipynb"))
    query = run_record["steps"]["02_query"]
    assert query["parameters"]["budget"] == 10  # the tiny profile
    assert query["parameters"]["ensemble_path"] == "{run}/out/01_train_ensemble/ensemble.json"
    train_outputs = run_record["steps"]["01_train_ensemble"]["outputs_sha256"]
    assert query["inputs"]["ensemble_path"] == {
        "step": "01_train_ensemble",
        "outputs_sha256": train_outputs,
    }
    assert "selections/AL.json" in query["outputs"]
    version = json.loads((run_dir / "out/04_append/version.json").read_text())
    assert (Path(version["root"]) / "versions" / version["hash"] / "version.json").exists()
    assert (run_dir / "out/05_evaluate/evaluation.csv").exists()


@pytest.mark.slow
def test_round_two_trains_on_the_appended_version_and_is_what_evaluate_reads(loop_run):
    run_dir, _ = loop_run
    version = json.loads((run_dir / "out/04_append/version.json").read_text())
    first = json.loads((run_dir / "out/01_train_ensemble/ensemble.json").read_text())
    second = json.loads((run_dir / "out/round2_01_train_ensemble/ensemble.json").read_text())
    assert {m["data"]["kind"] for m in first["members"]} == {"world"}
    assert {m["data"].get("version_hash") for m in second["members"]} == {version["hash"]}
    budget, initial = 10, len(range(0, 2 * 100, 4))  # the tiny profile's 2 sessions, stride 4
    assert {m["data"]["kind"] for m in second["members"]} == {"version"}
    assert len(load_version(version["root"], version["hash"])) == initial + budget
    steps = json.loads((run_dir / "run.json").read_text())["steps"]
    assert steps["05_evaluate"]["parameters"]["ensemble_path"] == (
        "{run}/out/round2_01_train_ensemble/ensemble.json"
    )


@pytest.mark.slow
def test_rerun_hits_the_cache_for_every_step_even_when_moved(loop_run, tmp_path: Path):
    moved = _copy(loop_run[0], tmp_path)
    again = run_recipe("loop", moved, "tiny", progress=False, log=lambda _: None)
    assert [s.status for s in again.steps] == ["cached"] * len(LOOP)
    run_record = json.loads((moved / "run.json").read_text())
    assert {s["last"] for s in run_record["steps"].values()} == {"cached"}


@pytest.mark.slow
def test_changed_parameter_reruns_only_dependent_steps(loop_run, tmp_path: Path):
    moved = _copy(loop_run[0], tmp_path)
    old = json.loads((moved / "run.json").read_text())["steps"]
    annotated = {p.relative_to(moved / "out/03_annotate"): p.read_bytes()
                 for p in (moved / "out/03_annotate").rglob("*") if p.is_file()}  # fmt: skip
    logged: list[str] = []
    result = run_recipe(
        "loop", moved, "tiny", {"seconds_per_box": 9.0}, progress=False, log=logged.append
    )
    # 01, 02 are upstream; round 2 trains on the new version, and 05 evaluates that ensemble
    assert _ran(result) == ["03_annotate", "04_append", "round2_01_train_ensemble", "05_evaluate"]
    new = json.loads((moved / "run.json").read_text())["steps"]
    assert new["03_annotate"]["key"] != old["03_annotate"]["key"]
    assert new["02_query"]["key"] == old["02_query"]["key"]
    # the outputs of the old key are moved aside, byte for byte, and the log says where
    kept = moved / "superseded" / f"03_annotate-{old['03_annotate']['key'][:12]}"
    assert {p.relative_to(kept): p.read_bytes()
            for p in kept.rglob("*") if p.is_file()} == annotated  # fmt: skip
    assert annotated and any(str(kept) in line for line in logged)


@pytest.mark.slow
def test_failed_step_reports_its_notebook_and_error_and_a_rerun_resumes(
    loop_run, tmp_path: Path, capsys
):
    moved = _copy(loop_run[0], tmp_path)
    with pytest.raises(StepFailed) as caught:
        run_recipe(
            "loop",
            moved,
            "tiny",
            {"05_evaluate.test_sets": ["nope"]},
            progress=False,
            log=lambda _: None,
        )
    err = caught.value
    assert err.step == "05_evaluate" and err.cell is not None
    assert "ConfigError" in err.error and "'nope'" in err.error
    assert err.notebook == moved / "steps/05_evaluate.failed.ipynb" and err.notebook.exists()
    assert str(err.notebook) in str(err) and "evaluate_step" in str(err)
    assert not (moved / "steps/05_evaluate.ipynb").exists()
    run_record = json.loads((moved / "run.json").read_text())
    assert run_record["status"] == "failed"
    assert run_record["steps"]["05_evaluate"]["error"]["notebook"] == str(err.notebook)
    # after the fix (through the CLI), only the failed step runs
    args = ["run", "loop", "--profile", "tiny", "--run-dir", str(moved), "--no-progress"]
    assert main(args) == 0
    assert "1 step(s) ran, 5 cached" in capsys.readouterr().out
    assert (moved / "steps/05_evaluate.ipynb").exists()
    assert not (moved / "steps/05_evaluate.failed.ipynb").exists()
    assert json.loads((moved / "run.json").read_text())["status"] == "done"
