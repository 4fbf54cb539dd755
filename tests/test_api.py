"""``import alkit``: the public names resolve to their stage's objects, lazily."""

from __future__ import annotations

import subprocess
import sys

import alkit


def test_every_public_name_resolves_to_the_object_of_its_module():
    from alkit.ensemble.store import load_ensemble
    from alkit.query.acquisition import mutual_information
    from alkit.workflow.steps import query_step

    assert alkit.load_ensemble is load_ensemble
    assert alkit.mutual_information is mutual_information
    assert alkit.query_step is query_step
    for name in alkit.__all__:
        assert getattr(alkit, name) is not None, name


def test_import_alkit_loads_no_stage_and_no_torch():
    code = (
        "import sys, alkit; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('alkit.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_unknown_name_says_so():
    try:
        alkit.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("expected AttributeError")
