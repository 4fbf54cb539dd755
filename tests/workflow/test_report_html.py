"""The HTML report opens with the notebook's ``first-screen`` cells, without their code."""

from __future__ import annotations

import nbformat

from alkit.workflow.runfolder import _write_html


def test_first_screen_cells_open_the_report_without_their_code(tmp_path):
    nb = nbformat.v4.new_notebook()
    first = {"tags": ["first-screen"]}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title of the step"),
        nbformat.v4.new_code_cell("setup_value = 41"),
        nbformat.v4.new_markdown_cell("## Headline finding", metadata=first),
        nbformat.v4.new_code_cell("headline_figure_call()", metadata=first),
    ]
    path = tmp_path / "step.ipynb"
    nbformat.write(nb, str(path))
    _write_html(path, tmp_path / "step.html")
    html = (tmp_path / "step.html").read_text()
    assert html.index("Title of the step") < html.index("Headline finding")
    assert html.index("Headline finding") < html.index("setup_value")
    assert "headline_figure_call" not in html  # its input is hidden, its outputs stay
    again = nbformat.read(str(path), as_version=4)
    assert [c.source for c in again.cells][2] == "## Headline finding"  # notebook untouched
