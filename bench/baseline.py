"""Load a package of alkit as it was at an earlier git commit, beside today's, in one process.

Speed-ups are measured as old / new ratios from one run, so that machine load hits both alike:
``baseline_package("alkit/sim", "bc0bc5b")`` writes that commit's ``alkit/sim/*.py`` to a
temporary folder as the package ``alkit_base_sim`` (its ``alkit.sim.`` imports rewritten;
everything else it imports is today's ``alkit``) and imports it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def baseline_package(package: str, commit: str):
    """``package`` (a path such as ``"alkit/sim"``) at ``commit``, imported under a new name."""
    dotted = package.replace("/", ".")
    name = dotted.replace(".", "_base_", 1).replace(".", "_")  # alkit.sim -> alkit_base_sim
    folder = Path(tempfile.mkdtemp(prefix="alkit-base-")) / name
    folder.mkdir()
    for path in git("ls-tree", "--name-only", f"{commit}:{package}").split():
        if path.endswith(".py"):
            text = git("show", f"{commit}:{package}/{path}")
            (folder / path).write_text(text.replace(f"{dotted}.", f"{name}.").replace(
                f"from {dotted} import", f"from {name} import"))  # fmt: skip
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module(name)


def short(commit: str) -> str:
    return git("rev-parse", "--short", commit).strip()
