"""Training (contract §5, §6): ``train`` runs mini-batch training of a network on a data set and
returns its ``History``; ``charts`` draws the run's curves and confusion matrix (QtGui's QPainter
on a QImage, no widgets)."""

from designer.train.loop import COLUMNS, Event, History, check_fit, evaluate, train

__all__ = ["COLUMNS", "Event", "History", "check_fit", "evaluate", "train"]
