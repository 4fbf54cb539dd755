"""ipywidgets for alkit (imported as ``alkit_widgets``)."""
