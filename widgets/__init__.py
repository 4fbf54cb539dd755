"""ipywidgets for alkit (imported as ``alkit_widgets``).

Composite ipywidgets (no custom JavaScript): arrays stay in Python, only small PNGs and HTML
cross the wire. Each widget's state is a few traitlets linked to its controls, so notebooks
and tests can set them directly.
"""

from .ab_table import ABTable, ab_bar_figure, ab_table_html, ab_tidy_from_summary
from .ensemble_maps import EnsembleMaps
from .heatmap_figure import heatmap_figure
from .heatmap_viewer import HeatmapViewer
from .learning_curve import LearningCurve, learning_curve_figure
from .qa_viewer import QAViewer
from .render import array_to_png, figure_to_png
from .selection_explorer import MAX_THUMBNAILS, SelectionExplorer
from .top_frames import top_frames_figure

__all__ = [
    "MAX_THUMBNAILS",
    "ABTable",
    "EnsembleMaps",
    "HeatmapViewer",
    "LearningCurve",
    "QAViewer",
    "SelectionExplorer",
    "ab_bar_figure",
    "ab_table_html",
    "ab_tidy_from_summary",
    "array_to_png",
    "figure_to_png",
    "heatmap_figure",
    "learning_curve_figure",
    "top_frames_figure",
]
