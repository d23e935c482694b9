"""ferkit: facial-expression recognition for the Best Actor game.

The base package (labels, data, runtime) imports no torch; training and export live behind extras.
"""

from ferkit.labels import CLASS_NAMES, NUM_CLASSES

__version__ = "0.1.0"
__all__ = ["CLASS_NAMES", "NUM_CLASSES", "__version__"]
