"""The design can't change under a training run: every edit goes through ``Document.push``
(and Undo/Redo through the stack), and while a run is on, an edit that changes the network asks
first whether to stop the training; moving cards (positions only) goes on as usual."""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import QMessageBox, QWidget

from designer.app.commands import MoveNodesCommand

LOCKED = ("The design can't be edited while it trains: stop the training first "
          "(Train panel ▸ Stop, or Shift+F6)")


def positions_only(command: QUndoCommand | None) -> bool:
    """Whether a command only moves cards (a move, or an automatic layout)."""
    return isinstance(command, MoveNodesCommand)


class EditLock(QObject):
    """Installed as a document's ``guard``: ``document.push`` asks before an edit while
    ``controller.training``.
    ``ask(text)`` (replaceable, e.g. in tests) returns True to stop the training and make the
    edit; ``say(text)`` tells the user an edit was not made."""

    def __init__(self, document, controller, parent: QWidget | None,
                 say: Callable[[str], Any] = lambda text: None) -> None:
        super().__init__(parent)
        self.document = document
        self.controller = controller
        self.window = parent
        self.say = say
        self.refused = 0
        document.guard = self.allowed  # every edit of Document and the panels goes through it

    def ask(self, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Training in progress",
                          f"The design is being trained. Stop the training to make this edit "
                          f"(“{text}”)?\n\nWhat it has learnt so far is kept and handed to the "
                          f"Run panel.", parent=self.window)
        stop = box.addButton("Stop training and edit", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep training", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is stop

    def allowed(self, command: QUndoCommand | None) -> bool:
        """True if the edit may go ahead now: no training, a move, or the user chose to stop
        the training (it is stopped, and its worker has ended, on return)."""
        if not self.controller.training or command is None or positions_only(command):
            return True
        if self.ask(command.text()):
            self.controller.stop(wait=True)
            return True
        self.refused += 1
        self.document.refresh()  # views showing the edit they tried (the inspector) go back
        self.say(LOCKED)
        return False

    def undo(self) -> None:
        stack = self.document.undo_stack
        if stack.canUndo() and self.allowed(stack.command(stack.index() - 1)):
            stack.undo()

    def redo(self) -> None:
        stack = self.document.undo_stack
        if stack.canRedo() and self.allowed(stack.command(stack.index())):
            stack.redo()
