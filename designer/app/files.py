"""The main window's file commands (the File menu): new, open (design files and ONNX models),
save, and the exports (diagram, PyTorch code, ONNX), with the recent files and the folders
the dialogs start in. A mixin of :class:`designer.app.main_window.MainWindow`, which gives it
``document``, ``runner``, ``view``, ``recent_menu`` and the status bar."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

from designer.app.autosave import APP_NAME
from designer.app.busy import run_busy
from designer.app.document import is_builtin
from designer.app.messages import WRITE_ERRORS, write_failure
from designer.app.panels.gallery import TemplateGallery
from designer.core.atomic import regular_file_problem
from designer.core.design import Design
from designer.io.design_file import DesignError

FILE_FILTER = "CNN designs (*.cnnd.json *.json);;All files (*)"
#: what a design saved for the first time is called: the desktop knows *.cnnd.json files as CNN
#: designs (packaging/linux: the MIME type) and opens them here; a plain .json is any JSON
DESIGN_SUFFIX = ".cnnd.json"
#: File ▸ Open's file types: designs, and ONNX models (read as File ▸ Import ONNX model reads them)
OPEN_FILTER = "CNN designs and ONNX models (*.json *.onnx);;CNN designs (*.json);;" \
              "ONNX models (*.onnx);;All files (*)"
ONNX_FILTER = "ONNX models (*.onnx);;All files (*)"
RECENT_MAX = 10


class FileCommands:
    """File ▸ New, Open, Import ONNX model, Save, Save as, the exports and Open recent."""

    def maybe_save(self) -> bool:
        """Ask before unsaved work would be lost; False if the user cancels."""
        if not self.document.modified:
            return True
        answer = QMessageBox.warning(
            self, "Unsaved changes", f"{self.document.title} has unsaved changes. Save them?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_dialog(self) -> None:
        """The template gallery; the chosen template (or a blank design) replaces this one."""
        if not self.maybe_save():
            return
        gallery = TemplateGallery(self)
        if gallery.exec() != TemplateGallery.DialogCode.Accepted:
            return
        self._start(gallery.chosen)

    def new_design(self) -> None:
        if self.maybe_save():
            self._start(None)

    def new_from_template(self, template) -> None:
        if self.maybe_save():
            self._start(template)

    def _start(self, template) -> None:
        """Replace the design with a blank one or a template's copy (unsaved work was asked
        about already)."""
        try:
            design = template.load() if template is not None else Design("Untitled")
        except DesignError as exc:
            self._error("Can't open this template", str(exc))
            return
        self.document.replace(design, None)
        self.view.show_top()

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open design", self._last_folder(), OPEN_FILTER)
        if path:
            self.open_path(path)

    def import_dialog(self) -> None:
        """File ▸ Import ONNX model…"""
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import ONNX model", self._last_folder(),
                                              ONNX_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a file; a broken one is explained in a dialog and the current design is kept.
        An ONNX model is imported (:meth:`import_model`)."""
        if str(path).lower().endswith(".onnx"):
            return self.import_model(path)
        try:
            self.document.open(path)
        except DesignError as exc:
            self._error("Can't open this file", str(exc))
            return False
        except (OSError, UnicodeError, ValueError, MemoryError) as exc:  # in case io lets one by
            self._error("Can't open this file", f"{path}: {exc}")
            return False
        self._remember(path)
        self.view.show_top()
        return True

    def import_model(self, path: str | Path) -> bool:
        """Read the ONNX model at ``path`` as a new, unsaved design (saving asks for a design
        file's name: the model is never written over) and have the Run panel use its weights.
        A model that can't be read is explained and the current design is kept."""
        from designer.io.onnx_import import OnnxImportError, import_onnx
        path = Path(path)
        problem = regular_file_problem(path, "an ONNX model (.onnx)")
        try:
            if problem is not None:
                raise OnnxImportError(problem)
            design, weights = run_busy(self, f"Reading {path.name}…", lambda: import_onnx(path))
        except (OnnxImportError, ImportError, MemoryError) as exc:
            text = str(exc) if not isinstance(exc, MemoryError) else (
                f"{path.name}: there is not enough memory to read this model")
            self._error("Can't import this model", text)
            return False
        self.document.replace(design, None)
        self.document.mark_modified()  # not saved as a design yet: closing asks
        self.runner.use_weights(weights, path.name, f"from {path.name} (the model's own)")
        self._remember(path)
        self.view.show_top()
        layers = len(design.nodes) - 1
        self.statusBar().showMessage(
            f"Imported {path.name}: {layers} layer{'s' * (layers != 1)}; the Run panel uses its "
            f"weights. Save keeps the design (.json), the Run panel's Save weights its weights",
            15000)
        return True

    def _error(self, title: str, text: str) -> None:
        """A failure in a dialog whose text starts with its title: a window manager may cut a
        title short ("Can'… file"), the text is never cut."""
        QMessageBox.critical(self, title, f"{title}.\n\n{text}")

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        name = self.document.path.name if self.document.path else \
            _file_stem(self.document.title) + DESIGN_SUFFIX
        suggested = str(Path(self._save_folder()) / name)
        path, _ = QFileDialog.getSaveFileName(self, "Save design", suggested, FILE_FILTER)
        return bool(path) and self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        if is_builtin(path):  # typed or picked by hand: the app's own templates stay as they are
            self._error("Can't save", f"{path} is one of CNN Designer's built-in templates; "
                                      f"save your design under another name or in another folder")
            return False
        try:
            self.document.save(path)
        except DesignError as exc:
            self._error("Can't save", str(exc))
            return False
        except WRITE_ERRORS as exc:
            self._error("Can't save", write_failure(exc, path))
            return False
        self._remember(path)
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    #: Export diagram's file types: (filter, extension, PNG scale)
    DIAGRAM_FILTERS = (("SVG drawing (*.svg)", ".svg", 1.0), ("PDF document (*.pdf)", ".pdf", 1.0),
                       ("PNG image, 2× (*.png)", ".png", 2.0), ("PNG image, 1× (*.png)", ".png", 1.0),
                       ("PNG image, 4× (*.png)", ".png", 4.0))

    def export_diagram_dialog(self) -> bool:
        """File ▸ Export diagram…: the file type (and a PNG's scale) is the chosen filter's."""
        stem = self.document.path.stem if self.document.path else _file_stem(self.document.title)
        suggested = str(Path(self._save_folder()) / f"{stem}.svg")
        filters = ";;".join(f for f, _, _ in self.DIAGRAM_FILTERS)
        path, chosen = QFileDialog.getSaveFileName(self, "Export diagram", suggested, filters)
        if not path:
            return False
        _, suffix, scale = next((f for f in self.DIAGRAM_FILTERS if f[0] == chosen),
                                self.DIAGRAM_FILTERS[0])
        target = Path(path)
        if target.suffix.lower() not in (".svg", ".pdf", ".png"):
            target = target.with_name(target.name + suffix)
        return self.export_diagram_to(target, scale)

    def export_diagram_to(self, path: Path, scale: float = 2.0) -> bool:
        from designer.app.diagram import export_diagram
        try:
            export_diagram(self.document.design, path, scale)
        except (OSError, ValueError, MemoryError, RuntimeError) as exc:
            self._error("Can't export the diagram", str(exc))
            return False
        self.statusBar().showMessage(f"Exported the diagram to {path}", 4000)
        return True

    def _export_target(self, title: str, suffix: str, file_filter: str) -> Path | None:
        """The save dialog of an export, starting where Save As starts; ``suffix`` is added
        to a name typed without it. None: cancelled."""
        stem = self.document.path.stem if self.document.path else _file_stem(self.document.title)
        suggested = str(Path(self._save_folder()) / f"{stem}{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, title, suggested, file_filter)
        if not path:
            return None
        target = Path(path)
        if target.suffix.lower() != suffix:
            target = target.with_name(target.name + suffix)
        return target

    def export_code_dialog(self) -> bool:
        """File ▸ Export as PyTorch code…"""
        target = self._export_target("Export as PyTorch code", ".py", "Python code (*.py)")
        return target is not None and self.export_code_to(target)

    def export_code_to(self, path: Path) -> bool:
        from designer.io.pytorch import write_pytorch_code
        try:
            write_pytorch_code(self.document.design, path, self.document.analysis)
        except WRITE_ERRORS as exc:  # CodeExportError is a ValueError with a plain message
            self._error("Can't export the PyTorch code", _export_failure(exc, path))
            return False
        self.statusBar().showMessage(f"Exported the PyTorch code to {path}", 6000)
        return True

    def export_onnx_dialog(self) -> bool:
        """File ▸ Export as ONNX…"""
        target = self._export_target("Export as ONNX", ".onnx", "ONNX model (*.onnx)")
        return target is not None and self.export_onnx_to(target)

    def export_weights(self) -> tuple[dict, str]:
        """The weights a run of the open design uses now, and the Run panel's line saying which
        they are: the last run's when it ran this very design, else those the Run panel's
        weights choice gives (trained, seeded, classic filters or a weights file). Raises
        WeightsError, NotEnoughMemory, InvalidDesign."""
        from designer.app.run.controller import (CLASSIC, FILE, RANDOM, TRAINED, _weights_for,
                                                 fingerprint)
        from designer.engine.classic import apply_classic_filters
        runner, design = self.runner, self.document.design
        result = runner.result
        if result is not None and result.fingerprint == fingerprint(design):
            return result.network.weights, result.weights_note
        analysis = self.document.analysis
        if not analysis.valid:
            from designer.engine.network import InvalidDesign, Network
            try:
                Network(design)  # raises InvalidDesign, which lists the problems
            except InvalidDesign as exc:
                shown = exc.problems[:5] + ([f"… and {len(exc.problems) - 5} more"]
                                            if len(exc.problems) > 5 else [])
                raise ValueError("the design has errors, so it can't be exported; fix them "
                                 "first (see the Problems list):\n  " + "\n  ".join(shown)
                                 ) from None
        mode, tensors = runner.weights_mode, getattr(runner, "_file_weights", None)
        note = runner.weights_note()
        if mode == TRAINED:
            from designer.io.trained import find_trained
            model = find_trained(design)
            if model is not None:
                mode, tensors = FILE, runner.trained_tensors(model)
            else:
                mode = RANDOM
        weights, _ = _weights_for(analysis, mode, tensors, {})
        if mode == CLASSIC:
            weights, _, _ = apply_classic_filters(weights, analysis)
        return weights, note

    def export_onnx_to(self, path: Path) -> bool:
        """Write the design with :meth:`export_weights` as ONNX; the status bar says which
        weights went in."""
        from designer.io.onnx_export import export_onnx
        design = self.document.design
        try:
            weights, note = self.export_weights()
            # VGG-16 takes seconds: written on a worker while the window stays drawn (and
            # takes no input, so the design can't change under it)
            run_busy(self, f"Writing {path.name}…", lambda: export_onnx(design, weights, path))
        except WRITE_ERRORS as exc:  # InvalidDesign, WeightsError: ValueErrors, said plainly
            self._error("Can't export as ONNX", _export_failure(exc, path))
            return False
        which = note.removeprefix("Weights: ") if note else "the Run panel's weights"
        self.statusBar().showMessage(f"Exported the design as ONNX to {path}, with weights: "
                                     f"{which}", 10000)
        return True

    def _settings(self) -> QSettings:
        return app_settings()

    def _last_folder(self) -> str:
        """Where Open starts: the open file's folder, else the last one a design was opened
        from or saved to, else the documents folder."""
        if self.document.path is not None:
            return str(self.document.path.parent)
        last = self._settings().value("last_folder")
        if isinstance(last, str) and last and Path(last).is_dir():
            return last
        return documents_folder()

    def _save_folder(self) -> str:
        """Where Save As starts: never the built-in templates' folder (a template opens as an
        untitled copy, whose first save goes to the user's documents folder)."""
        folder = self._last_folder()
        return documents_folder() if is_builtin(folder) else folder

    def recent_files(self) -> list[str]:
        """The recently used files, newest first. QSettings gives a one-item list back as a
        plain string (and nothing useful for a damaged entry): always a list of paths here."""
        return _as_paths(self._settings().value("recent_files", []))

    def _remember(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        settings = self._settings()
        recent = [p for p in self.recent_files() if p != path]
        settings.setValue("recent_files", [path] + recent[:RECENT_MAX - 1])
        if not is_builtin(path):  # a template's folder is no place to start a dialog in
            settings.setValue("last_folder", str(Path(path).parent))
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            action = QAction(path, self)
            action.triggered.connect(lambda _=False, p=path: self.maybe_save() and self.open_path(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(recent))


def app_settings() -> QSettings:
    """The app's settings (recent files, folders, the window): the platform's place for
    ``CNN Designer``'s (tests point this at a file of their own)."""
    return QSettings(APP_NAME, APP_NAME)


def documents_folder() -> str:
    """The user's documents folder (their home folder if the platform has none)."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return folder or str(Path.home())


def _export_failure(exc: BaseException, path: Path) -> str:
    """What an export's error box says: the exporters' own plain message for a design or
    weights they can't take (a ValueError, NotEnoughMemory), else why the file can't be written."""
    from designer.engine.memory import NotEnoughMemory
    if isinstance(exc, NotEnoughMemory) or (isinstance(exc, ValueError)
                                            and not isinstance(exc, UnicodeError)):
        return str(exc)
    return write_failure(exc, path)


def _file_stem(title: str) -> str:
    """A file name from a design's title ("cs231n: one conv layer" → "cs231n one conv layer")."""
    cleaned = "".join(" " if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in title)
    return " ".join(cleaned.split()) or "Untitled"


def _as_paths(value: object) -> list[str]:
    """A QSettings list of paths as read back: a list, one path as a string, or junk."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v]
    return []
