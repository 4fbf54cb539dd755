"""alkit: scalable active learning for object detection (Haussmann et al.).

The loop: TRAIN an ensemble of U-Net detectors, QUERY an unlabelled pool by ensemble
mutual information, ANNOTATE the selection, APPEND it as a new dataset version.
"""

from alkit.data.classes import CLASSES, SizeBuckets

__version__ = "0.1.0"
__all__ = ["CLASSES", "SizeBuckets", "__version__"]
