"""The Label Studio ML backend: the loop driven by a labelling tool over HTTP."""
