"""Data to train on (contract §6): the built-in sets drawn by the project (``builtin:digits``,
``builtin:shapes``), image folders and ``.npz`` arrays, converted to a design's Input. No widgets:
images are decoded through ``designer.io.images`` (QtGui's QImage)."""

from designer.data.dataset import DataError, Dataset, augment, load_dataset

__all__ = ["DataError", "Dataset", "augment", "load_dataset"]
