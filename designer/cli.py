"""The command line (contract §4): ``cnn-designer [FILE]``, ``summary``, ``templates``, ``new``, ``run``,
``train``, ``export``, ``import``.

No traceback reaches a user: every failure a command knows of becomes a message and the
contract's exit status where it happens, and ``main`` keeps one last guard for the unforeseen
(a short message saying it is a bug, the traceback in a file in the temporary folder, exit 2;
a MemoryError anywhere says there is not enough memory).
"""
from __future__ import annotations

import argparse
import difflib
import math
import os
import shlex
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from designer import __version__
from designer.core.analysis import Analysis
from designer.core.atomic import describe_os_error, describe_read_error, regular_file_problem, write_atomic
from designer.core.summary import format_table, write_json
from designer.io.design_file import DesignError, load_design, save_design
from designer.io.templates import find_template, list_templates

EXIT_OK, EXIT_INVALID, EXIT_BAD_FILE = 0, 1, 2
EXIT_CANCELLED = 130
COMMANDS = ("summary", "templates", "new", "run", "train", "export", "import")
FILE_HELP = "a design file (.json), or an ONNX model (.onnx) with its weights"
BUG = "this is a bug in CNN Designer; please report it with the command you ran"


class CommandError(Exception):
    """A failure a command explains to the user: the message and the exit status."""

    def __init__(self, message: str, status: int = EXIT_BAD_FILE) -> None:
        super().__init__(message)
        self.status = status


def _print_error(message: str) -> None:
    print(f"cnn-designer: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"cnn-designer: warning: {message}", file=sys.stderr)


def _configure_stdout() -> None:
    """Tables use × and ✗; never crash on a terminal that can't print them (nor on a file name
    or id that isn't valid text)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass


def _usable_name(path: str | os.PathLike) -> bool:
    """Whether the file system can be asked about ``path`` at all (no NUL character, no text
    that can't be encoded); prints why not."""
    try:
        encoded = os.fsencode(path)
    except (UnicodeEncodeError, TypeError):
        encoded = b"\0"
    if b"\0" in encoded:
        _print_error(f"{str(path)!r}: not a usable file name")
        return False
    return True


#: the weights of the ``.onnx`` models loaded by this command, by path: a model brings its own
#: weights, used where no --weights file is given (contract §4: FILE may be an ONNX model)
_MODEL_WEIGHTS: dict[str, dict] = {}


def is_onnx(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(".onnx")


def _load(path: str):
    """The design at ``path`` (a design file, or an ONNX model read as ``import`` reads it), or
    None after printing why it can't be read."""
    if not _usable_name(path):
        return None
    if is_onnx(path):
        return _load_model(path)
    try:
        return load_design(path)
    except DesignError as exc:
        _print_error(str(exc))
        return None


def _load_model(path: str):
    """The design of the ONNX model at ``path``, its weights kept in _MODEL_WEIGHTS."""
    import designer

    problem = regular_file_problem(path, "an ONNX model (.onnx)")
    if problem is not None:
        _print_error(problem)
        return None
    try:
        design, weights = designer.import_onnx(path)
    except (designer.OnnxImportError, designer.ExportUnavailable) as exc:
        _print_error(str(exc))
        return None
    _MODEL_WEIGHTS[os.fspath(path)] = weights
    return design


def model_weights(path: str | os.PathLike) -> dict | None:
    """The weights the ONNX model at ``path`` brought, if this command loaded one there."""
    return _MODEL_WEIGHTS.get(os.fspath(path))


def check_input_file(path: str | os.PathLike, kind: str) -> None:
    """CommandError unless ``path`` is a regular file (a folder, pipe or device is refused
    without being opened, so nothing blocks); ``kind`` names what it should be, with its
    article ("a design file")."""
    problem = regular_file_problem(path, kind)
    if problem is not None:
        raise CommandError(problem)


# ------------------------------------------------------------------------------ summary

def cmd_summary(args: argparse.Namespace) -> int:
    design = _load(args.file)
    if design is None:
        return EXIT_BAD_FILE
    analysis = Analysis(design)
    if args.json:
        write_json(design, sys.stdout, analysis)  # node by node: a 100,000-node design prints fast
    else:
        print(format_table(design, analysis))
    return EXIT_OK if analysis.valid else EXIT_INVALID


def cmd_templates(args: argparse.Namespace) -> int:
    try:
        templates = list_templates()
    except DesignError as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    if not templates:
        _print_error("no built-in templates were found (is the installation complete?)")
        return EXIT_BAD_FILE
    width = max(len(t.id) for t in templates)
    for t in templates:
        try:
            totals = Analysis(t.load()).totals()
            params = f"{totals['params']:,} parameters"
        except DesignError as exc:
            params = f"can't be read: {exc}"
        print(f"{t.id.ljust(width)}  {t.title} ({params})")
        if args.verbose:
            print(f"{' ' * width}  {t.description}")
    print(f"\nWrite one to a file with: cnn-designer new {templates[0].id} -o my-design.json")
    return EXIT_OK


# ---------------------------------------------------------------------------------- new

def cmd_new(args: argparse.Namespace) -> int:
    try:
        template = find_template(args.template)
    except DesignError as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    out = Path(args.output)
    try:
        exists = os.path.lexists(out)
    except ValueError:
        exists = False
    if exists and not args.force:
        _print_error(f"{out} already exists; choose another name or add --force to replace it")
        return EXIT_BAD_FILE
    try:
        save_design(template.load(), out)
    except DesignError as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    print(f"Wrote {template.title} to {out}")
    return EXIT_OK


# ---------------------------------------------------------------------------------- run

def _file_name(node_id: str, used: set[str]) -> str:
    """A safe, unique PNG file name for a node id."""
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in node_id).strip(".") or "node"
    try:
        stem.encode("utf-8")
    except UnicodeEncodeError:
        stem = stem.encode("utf-8", "replace").decode("utf-8").replace("?", "_")
    name, n = stem, 2
    while name.lower() in used:
        name, n = f"{stem}_{n}", n + 1
    used.add(name.lower())
    return name + ".png"


def write_npz(path: str | os.PathLike, arrays: Iterable[tuple[str, Any]]) -> None:
    """Write an .npz archive (as ``numpy.savez``) one float32 array at a time, each streamed
    into its ZIP64 entry without a copy of the whole, atomically (a temporary file beside
    ``path``, renamed over it once complete). OSError on failure; ValueError for a key that
    can't be an archive member name."""
    import numpy as np

    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, array in arrays:
                try:
                    (key + ".npy").encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"the name {key!r} can't be written into an archive "
                                     f"(it is not valid text); rename it") from None
                array = np.asarray(array, dtype=np.float32)
                with archive.open(key + ".npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, array, allow_pickle=False)

    write_atomic(path, write)


def _prepare_out(out: Path) -> None:
    """Make the results folder and make sure a file can be written in it, before any work."""
    try:
        info = os.stat(out)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise CommandError(describe_os_error(exc, out / "activations.npz")) from None
    except ValueError:
        raise CommandError(f"{str(out)!r}: not a usable folder name") from None
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise CommandError(f"{out} is a file, not a folder; choose a folder for the results")
    if info is None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(describe_os_error(exc, out)) from None
    try:
        with tempfile.TemporaryFile(dir=out, prefix=".cnn-designer-probe."):
            pass
    except OSError as exc:
        raise CommandError(describe_os_error(exc, out / "activations.npz")) from None


def _input_batch(path: str, shape: tuple[int, int, int]) -> int:
    """The batch size a .npy input's header declares, read without its data (CommandError if
    the header is not an array this design's Input takes)."""
    from designer.engine.arrays import ArrayFileError, npy_header

    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            given, dtype, _ = npy_header(handle, name=name)
    except ArrayFileError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(describe_read_error(exc, path, ".npy array")) from None
    if dtype.kind not in "fiu":
        raise CommandError(f"{name}: holds {dtype} values, not numbers")
    c, h, w = shape
    if len(given) == 3 and tuple(given) == (c, h, w):
        return 1
    if len(given) == 4 and tuple(given[1:]) == (c, h, w) and given[0] >= 1:
        return int(given[0])
    raise CommandError(f"{name}: has shape {tuple(given)}, but this design's Input "
                       f"takes ({c}, {h}, {w}) or (N, {c}, {h}, {w})")


def _writing_bytes(shapes: Iterable[tuple[int, ...]]) -> int:
    """Memory writing the results takes beside the activations: the largest picture, its PNG
    encoding, and a band of rows being coloured."""
    from designer.io.images import plan_tiles

    largest = 0
    for shape in shapes:
        plan = plan_tiles(shape)
        largest = max(largest, plan.height * plan.width * 3)
    return 2 * largest + 64 * 2**20


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except CommandError as exc:
        _print_error(str(exc))
        return exc.status


def _run(args: argparse.Namespace) -> int:
    from designer.engine.arrays import ArrayFileError
    from designer.engine.network import (Cancelled, InputError, InvalidDesign, NotEnoughMemory,
                                         build)
    from designer.engine.weights import WeightsError
    from designer.io.images import ImageError, image_info, load_input

    started = time.perf_counter()
    design = _load(args.file)
    if design is None:
        return EXIT_BAD_FILE
    check_input_file(args.input, "an image or a .npy array")
    if args.weights is not None:
        check_input_file(args.weights, "a weights file (.npz)")
    weights, seed, used = _run_weights(args, design)
    try:
        net = build(design, weights=weights, seed=seed)  # allocates no seeded weights
    except InvalidDesign as exc:
        raise CommandError(str(exc), EXIT_INVALID) from None
    except (WeightsError, NotEnoughMemory) as exc:
        raise CommandError(str(exc)) from None
    out = Path(args.out)
    shape = net.input_shape
    is_array = str(args.input).lower().endswith(".npy")
    try:
        if is_array:
            batch = _input_batch(args.input, shape)
        else:
            image_info(args.input)  # the header only: a readable image, its size known
            batch = 1
        writing = _writing_bytes((net.infos[n].shape for n in net.order))
        net.check_memory(batch, need=net.estimate_bytes(batch) + writing)
        _prepare_out(out)  # made, and written to once, before any real work
        x = load_input(args.input, shape, args.mean, args.std)  # its own cost checked first
        forward_started = time.perf_counter()
        acts = net.forward(x)
        seconds = time.perf_counter() - forward_started
    except (ImageError, InputError, WeightsError, NotEnoughMemory) as exc:
        raise CommandError(str(exc)) from None
    except ArrayFileError as exc:  # a .npy input the engine's reader refuses
        raise CommandError(str(exc)) from None
    except Cancelled:
        return EXIT_CANCELLED
    problem = net.find_nonfinite(acts)
    if problem is not None:
        _warn(problem.message)
    written, reduced = _write_results(net, acts, out)
    c, h, w = shape
    total = time.perf_counter() - started
    print(used)
    prediction = _prediction_line(net, acts, used.startswith("weights: random"))
    if prediction is not None:
        print(prediction)
    print(f"Ran {len(acts)} nodes on {Path(args.input).name} ({x.shape[0]} × {c}×{h}×{w}): "
          f"forward pass {seconds:.2f} s, {total:.2f} s in all.")
    print(f"Wrote {out / 'activations.npz'}, {out / 'weights.npz'} and {len(acts)} PNG files "
          f"of activation maps (first sample, each map on its own scale) to {out}.")
    if reduced:
        node_id, note = reduced[0]
        more = f" (and {len(reduced) - 1} more)" if len(reduced) > 1 else ""
        print(f"{len(reduced)} picture(s) would be over {_max_side():,} pixels a side, so they "
              f"show less than every value: {node_id}: {note}{more}; activations.npz holds "
              f"every value.")
    return EXIT_OK


#: classes named in run's prediction line
PREDICTION_TOP = 3


def _prediction_line(net, acts, untrained: bool) -> str | None:
    """"prediction: star 82.1 %, cross 9.0 %, arrow 3.2 %": the top classes of the first
    sample (net.predict: the output Softmax's values, or the softmax of the output), named
    after the design's classes (contract §2), for an output of one score per class (flat, two
    or more); None for any other output."""
    import numpy as np

    from designer.engine import ops

    out = net.analysis.output
    y = acts.get(out)
    if y is None or y.ndim != 2 or y.shape[1] < 2:
        return None
    first = np.asarray(y[:1], np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        p = first[0] if net.infos[out].type == "Softmax" else ops.softmax(first)[0]
    count = len(p)
    classes = net.design.classes
    names = (list(classes) if classes is not None and len(classes) == count
             else [f"class {i}" for i in range(count)])
    note = " (untrained: predictions mean nothing)" if untrained else ""
    sample = " (first sample)" if y.shape[0] > 1 else ""
    if not np.isfinite(p).all():
        return f"prediction{sample}: none — the output holds inf or NaN{note}"
    top = np.argsort(-p, kind="stable")[:PREDICTION_TOP]
    shown = ", ".join(f"{names[i]} {_percent(p[i])}" for i in top)
    return f"prediction{sample}: {shown}{note}"


def _percent(p: float) -> str:
    """A probability in percent with one decimal; "< 0.1 %" for one that would read 0.0 %."""
    return "< 0.1 %" if 0 < p < 0.0005 else f"{p * 100:.1f} %"


def _run_weights(args: argparse.Namespace, design) -> tuple[Any, int, str]:
    """(weights for build, seed, the line saying which weights are used) for ``run``: the file
    given with --weights; else, without --seed or --random, the trained weights that ship for
    this design's structure (contract §6); else seeded random weights."""
    from designer.io.trained import find_trained

    seed = 0 if args.seed is None else args.seed
    if args.weights is not None:
        return args.weights, seed, f"weights: from {Path(args.weights).name}"
    own = model_weights(args.file)
    if own is not None:
        name = Path(args.file).name
        if args.random or args.seed is not None:
            return None, seed, (f"weights: random (seed {seed}) — leave out --random and --seed "
                                f"to use the weights in {name}")
        return own, seed, f"weights: from {name} (the model's own)"
    model = find_trained(design)
    random = f"weights: random (seed {seed}) — untrained"
    if model is None:
        return None, seed, random
    if args.random or args.seed is not None:
        return None, seed, (f"{random}; leave out --random and --seed to use {model.title}'s "
                            f"weights trained on {model.data} ({model.accuracy_text()} "
                            f"validation accuracy)")
    if not model.weights.is_file():  # an incomplete installation: say so, run anyway
        _warn(f"the trained weights for {model.title} are missing ({model.weights}); using "
              f"seeded random weights")
        return None, seed, random
    return model.weights, seed, f"weights: {model.describe()}"


# ------------------------------------------------------------------------------- export

def cmd_export(args: argparse.Namespace) -> int:
    try:
        return _export(args)
    except CommandError as exc:
        _print_error(str(exc))
        return exc.status


def _check_writable(out: Path) -> None:
    """CommandError unless a file can be written at ``out`` (its folder exists and takes a new
    file; ``out`` is not a folder), said before any work."""
    folder = out.parent if str(out.parent) else Path(".")
    try:
        if os.path.isdir(out):
            raise CommandError(f"{out} is a folder; give a file name to write to")
        if not folder.is_dir():
            raise CommandError(describe_os_error(
                FileNotFoundError(2, "no such folder", str(out)), out))
        with tempfile.TemporaryFile(dir=folder, prefix=".cnn-designer-probe."):
            pass
    except OSError as exc:
        raise CommandError(describe_os_error(exc, out)) from None
    except ValueError:
        raise CommandError(f"{str(out)!r}: not a usable file name") from None


def _export(args: argparse.Namespace) -> int:
    import designer
    from designer.engine.network import InvalidDesign, NotEnoughMemory
    from designer.engine.weights import WeightsError
    from designer.io.pytorch import CodeExportError

    out = Path(args.output)
    try:
        kind = designer.export_kind(out)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    design = _load(args.file)
    if design is None:
        return EXIT_BAD_FILE
    if args.weights is not None:
        check_input_file(args.weights, "a weights file (.npz)")
    if args.scale is not None and kind != ".png":
        _warn(f"--scale sets a PNG's resolution; {out.suffix} is drawn at the canvas's size")
    if kind in (".py", ".svg", ".pdf", ".png") and (args.weights is not None or args.seed is not None):
        what = "PyTorch code holds no weights" if kind == ".py" else "a diagram shows no weights"
        _warn(f"--weights and --seed are not used: {what}")
    if kind in (".py", ".onnx"):
        analysis = Analysis(design)
        if not analysis.valid:
            problems = [str(p) for p in analysis.problems() if p.severity == "error"]
            problems = problems or analysis.design_problems()
            shown = problems[:5] + ([f"… and {len(problems) - 5} more"] if len(problems) > 5 else [])
            raise CommandError(f"{args.file}: the design has errors, so it can't be exported as "
                               f"{designer.EXPORT_FORMATS[kind]}: " + "; ".join(shown)
                               + " (a diagram can still be exported: .svg, .pdf or .png)",
                               EXIT_INVALID)
    _check_writable(out)
    weights: Any = args.weights
    which = f"from {Path(args.weights).name}" if args.weights is not None else None
    if weights is None and args.seed is None:
        weights = model_weights(args.file)  # an ONNX model passes its own weights on
        which = f"from {Path(args.file).name}" if weights is not None else None
    if kind == ".onnx" and weights is None and args.seed is None:
        from designer.io.trained import find_trained
        model = find_trained(design)  # as run does: the trained weights that ship for it
        if model is not None and model.weights.is_file():
            weights, which = model.weights, model.describe()
    if kind == ".onnx" and which is None:
        which = f"random (seed {args.seed or 0}) — untrained"
    if kind == ".onnx" and weights is None and args.seed is not None:
        from designer.engine.weights import expected_tensors, init_weights
        weights = init_weights(expected_tensors(Analysis(design)), args.seed)
    try:
        designer.export(design, out, weights=weights,
                        scale=1.0 if args.scale is None else args.scale)
    except designer.ExportUnavailable as exc:
        raise CommandError(str(exc)) from None
    except (InvalidDesign, CodeExportError) as exc:
        raise CommandError(str(exc), EXIT_INVALID) from None
    except (WeightsError, NotEnoughMemory) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        text = str(exc) if exc.filename is None else describe_os_error(exc, out)
        raise CommandError(text) from None
    except ValueError as exc:  # ONNX can't express it, a scale out of range, a PNG too large
        raise CommandError(str(exc), EXIT_INVALID if kind == ".onnx" else EXIT_BAD_FILE) from None
    print(f"Wrote {design.name or Path(args.file).name} as {designer.EXPORT_FORMATS[kind]} to {out}")
    if kind == ".onnx":
        print(f"weights: {which}")
    if kind == ".py":
        print('Its build_model("weights.npz") loads a weights file (run and train write one: '
              'DIR/weights.npz)')
    return EXIT_OK


# ------------------------------------------------------------------------------- import

def cmd_import(args: argparse.Namespace) -> int:
    try:
        return _import(args)
    except CommandError as exc:
        _print_error(str(exc))
        return exc.status


def _import(args: argparse.Namespace) -> int:
    import designer

    if not _usable_name(args.model):
        return EXIT_BAD_FILE
    check_input_file(args.model, "an ONNX model (.onnx)")
    out = Path(args.output)
    weights_out = Path(args.weights) if args.weights is not None else out.with_suffix(".npz")
    if weights_out == out:
        raise CommandError(f"{out}: the design and its weights can't be the same file; give "
                           f"--weights another name")
    _check_writable(out)
    _check_writable(weights_out)
    try:
        design, weights = designer.import_onnx(args.model)
    except (designer.OnnxImportError, designer.ExportUnavailable) as exc:
        raise CommandError(str(exc)) from None
    try:
        write_npz(weights_out, weights.items())
    except OSError as exc:
        raise CommandError(describe_os_error(exc, weights_out)) from None
    except ValueError as exc:
        raise CommandError(f"{weights_out}: {exc}") from None
    try:
        save_design(design, out)
    except DesignError as exc:
        raise CommandError(str(exc)) from None
    analysis = Analysis(design)
    layers = len(design.nodes) - 1
    print(f"Imported {Path(args.model).name}: {layers} layer{'s' * (layers != 1)}, "
          f"{analysis.totals()['params']:,} parameters; wrote the design to "
          f"{out} and its weights to {weights_out}")
    if not analysis.valid:
        _warn(f"the imported design has errors (cnn-designer summary {shlex.quote(str(out))} "
              f"lists them)")
    return EXIT_OK


# -------------------------------------------------------------------------------- train

def cmd_train(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except CommandError as exc:
        _print_error(str(exc))
        return exc.status


class _Stopper:
    """Ctrl+C while training: the first asks the run to stop after the current batch (and the
    results to be saved), a second one interrupts at once."""

    def __init__(self) -> None:
        self.asked = False
        self._previous = None

    def __enter__(self) -> "_Stopper":
        import signal
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl+C isn't ours to catch
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def __exit__(self, *exc) -> None:
        import signal
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _train(args: argparse.Namespace) -> int:
    from designer.data.dataset import DataError, load_dataset
    from designer.engine.network import InputError, InvalidDesign, NotEnoughMemory, build
    from designer.engine.optim import SGD, Adam, AdamW
    from designer.engine.training import TrainingError
    from designer.engine.weights import WeightsError
    from designer.train import train
    from designer.train.charts import confusion_png, curves_png
    from designer.train.loop import duration

    design = _load(args.file)
    if design is None:
        return EXIT_BAD_FILE
    if args.weights is not None:
        check_input_file(args.weights, "a weights file (.npz)")
    weights: Any = args.weights
    if weights is None and model_weights(args.file) is not None:
        weights = model_weights(args.file)  # an ONNX model trains on from its own weights
        print(f"Starting from the weights in {Path(args.file).name} (give --weights to start "
              f"from others)")
    try:
        net = build(design, weights=weights, seed=args.seed)
    except InvalidDesign as exc:
        problems = list(exc.problems)
        shown = problems[:5] + ([f"… and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise CommandError("the design has errors, so it can't train:\n  " + "\n  ".join(shown),
                           EXIT_INVALID) from None
    except (WeightsError, NotEnoughMemory) as exc:
        raise CommandError(str(exc)) from None
    c = net.input_shape[0]
    source = str(args.data)
    if c not in (1, 3) and not source.lower().endswith(".npz"):
        raise CommandError(f"the design's Input has {c} channels, but {source} holds images "
                           f"(grey or RGB): give the Input 1 or 3 channels, or train on an .npz "
                           f"file with {c}-channel arrays", EXIT_INVALID)
    if not source.startswith("builtin:") and not _usable_name(source):
        return EXIT_BAD_FILE
    name = args.optimizer
    lr = args.lr if args.lr is not None else (0.01 if name == "sgd" else 1e-3)
    if args.momentum is not None and name != "sgd":
        raise CommandError(f"--momentum is for --optimizer sgd, not {name} (Adam's moments are "
                           f"its betas)")
    try:
        if name == "sgd":
            optimizer = SGD(lr=lr, momentum=0.9 if args.momentum is None else args.momentum,
                            weight_decay=args.weight_decay or 0.0)
        elif name == "adam":
            optimizer = Adam(lr=lr, weight_decay=args.weight_decay or 0.0)
        else:
            optimizer = AdamW(lr=lr, weight_decay=(1e-2 if args.weight_decay is None
                                                   else args.weight_decay))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    schedule = _schedule(args, optimizer)
    out = Path(args.out)
    if source.lower().endswith(".npz"):
        _check_npz_channels(Path(source), c)
    try:
        data = load_dataset(source, design, seed=args.seed)
    except DataError as exc:
        raise CommandError(str(exc)) from None
    except NotEnoughMemory as exc:
        raise CommandError(str(exc)) from None
    _prepare_out(out)

    tty = sys.stdout.isatty()
    width = len(str(args.epochs))

    def line(event) -> str:
        text = (f"epoch {event.epoch:>{width}}/{event.epochs}  batch {event.batch:>4}/"
                f"{event.batches}  loss {event.loss:.4f}  accuracy {100 * event.accuracy:5.1f} %")
        if event.row is not None:
            text += (f"  val loss {event.row['val_loss']:.4f}  val accuracy "
                     f"{100 * event.row['val_accuracy']:5.1f} %  {event.row['seconds']:.1f} s")
        return text + f"  left {duration(event.remaining)}"

    shown = [-1.0]  # when the updating line was last redrawn
    first_loss: list[float] = []  # the first batch's loss, before any step: the starting point

    def progress(event) -> bool:
        if not first_loss and event.kind == "batch" and event.step_loss is not None:
            first_loss.append(float(event.step_loss))
        if event.kind == "epoch":
            print(("\r\033[K" if tty else "") + line(event), flush=True)
        elif tty and (event.seconds - shown[0] >= 0.1 or event.batch == event.batches):
            shown[0] = event.seconds  # at most ten redraws a second
            print("\r\033[K" + line(event), end="", flush=True)
        return not stopper.asked

    started = time.perf_counter()
    with _Stopper() as stopper:
        try:
            history = train(net, data, epochs=args.epochs, batch_size=args.batch_size,
                            optimizer=optimizer, seed=args.seed, progress=progress,
                            schedule=schedule, clip_norm=args.clip_norm, augment=args.augment)
        except TrainingError as exc:
            if tty:
                print()
            message = str(exc)
            if first_loss:  # raised after steps were taken: the loss stopped being a number
                message += (f" (--lr {lr:g} with --optimizer {name}; try "
                            f"{_smaller_lr(name, lr):g}). Nothing was saved")
            raise CommandError(message, EXIT_INVALID) from None
        except (InputError, NotEnoughMemory) as exc:
            if tty:
                print()
            raise CommandError(str(exc)) from None
    if history.stopped and stopper.asked:
        if tty:
            print()
        print(f"Stopped (Ctrl+C) during epoch {len(history.rows)}; saving what was learnt.")
    _write_training(net, design, data, history, out, curves_png, confusion_png)
    last = history.rows[-1]
    print(f"Trained {len(history.rows)} epoch(s) in {time.perf_counter() - started:.1f} s: "
          f"validation accuracy {100 * last['val_accuracy']:.1f} %, loss {last['val_loss']:.4f}.")
    print(f"Wrote weights.npz, metrics.csv, curves.png, confusion.png and design.json to {out}.")
    print(f"Run it: cnn-designer run {shlex.quote(str(out / 'design.json'))} --input IMAGE "
          f"--weights {shlex.quote(str(out / 'weights.npz'))} --out RESULTS_DIR")
    x_train = data.train[0]
    if x_train.size and (float(x_train.min()) < 0 or float(x_train.max()) > 1):
        print("  (the training images were not scaled to [0, 1], as run scales an image: give "
              "--input a .npy array scaled as they were, or the image with --mean and --std)")
    warning = training_warning(history.rows, first_loss[0] if first_loss else None,
                               len(data.classes), name, lr)
    if warning:
        _warn(warning)
    return EXIT_OK


#: the learning rate each optimizer starts from when --lr isn't given
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}


def _smaller_lr(optimizer: str, lr: float) -> float:
    """A learning rate to suggest after ``lr`` proved too high: the default, or a tenth."""
    default = DEFAULT_LR.get(optimizer, 1e-3)
    return default if lr > default else lr / 10


def training_warning(rows: list[dict], first_loss: float | None, classes: int, optimizer: str,
                     lr: float) -> str | None:
    """A warning for a run that trained but learnt nothing useful, naming the likely cause:
    the final validation loss not a number, or grown to over twice where it started (the first
    batch's loss, or ln K, the loss of a uniform guess, if higher) with the accuracy nearer a
    guess than 100 %; or, after three epochs or more, the validation accuracy at chance level
    (at most 1.5/K). None for a run that looks healthy."""
    if not rows:
        return None
    last = rows[-1]
    val_loss, accuracy = float(last["val_loss"]), float(last["val_accuracy"])
    chance = 1.0 / max(1, classes)
    start = max(first_loss if first_loss is not None and math.isfinite(first_loss) else 0.0,
                math.log(max(2, classes)))
    epochs = len(rows)
    at_chance = epochs >= 3 and accuracy <= 1.5 * chance
    # a loss that grew while the accuracy stays well above a guess is overconfidence, not this
    blew_up = not math.isfinite(val_loss) or (val_loss > 2 * start
                                              and accuracy < (1 + chance) / 2)
    if not blew_up and not at_chance:
        return None
    accuracy_text = (f"validation accuracy {100 * accuracy:.1f} % (a guess: "
                     f"{100 * chance:.1f} % for {classes} classes)")
    if blew_up:
        grew = (f"the validation loss became {val_loss}" if not math.isfinite(val_loss) else
                f"the loss grew from {start:.2f} to {val_loss:.3g}")
        return (f"training went wrong: {grew}, {accuracy_text}; the learning rate "
                f"{lr:g} is probably too high: try --lr {_smaller_lr(optimizer, lr):g}")
    default = DEFAULT_LR.get(optimizer, 1e-3)
    if lr > 10 * default:
        cause = (f"the learning rate {lr:g} is probably too high: try --lr "
                 f"{_smaller_lr(optimizer, lr):g}")
    else:
        cause = ("try more epochs or another learning rate, and check that the labels belong "
                 "to the images")
    return (f"the network learnt nothing useful: {accuracy_text} after {epochs} "
            f"epochs; {cause}")


def _schedule(args: argparse.Namespace, optimizer) -> Any:
    """The learning-rate schedule --schedule, --step-size and --gamma ask for (None for none);
    CommandError for step options without --schedule step."""
    from designer.engine.optim import CosineAnnealingLR, StepLR

    if args.schedule != "step":
        given = [name for name, value in (("--step-size", args.step_size),
                                          ("--gamma", args.gamma)) if value is not None]
        if given:
            raise CommandError(f"{' and '.join(given)} set(s) the step schedule; add --schedule "
                               f"step, or leave {' and '.join(given)} out")
    if args.schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=args.epochs)
    if args.schedule == "step":
        step = args.step_size if args.step_size is not None else max(1, args.epochs // 3)
        return StepLR(optimizer, step_size=step, gamma=0.1 if args.gamma is None else args.gamma)
    return None


def _check_npz_channels(path: Path, channels: int) -> None:
    """A design/data mismatch found in an .npz's header before it is loaded: images with a
    channel count the design's Input can't take (only grey and RGB convert into each other)
    make the design unfit for the data (exit 1). Anything wrong with the file itself is left
    to the data loader, which says what (exit 2)."""
    from designer.engine.arrays import ArrayFileError, NpzReader

    try:
        with NpzReader(path, what="array", kind="data file") as reader:
            entry = reader.entries.get("x")
    except (ArrayFileError, OSError, ValueError, MemoryError):
        return
    if entry is None or len(entry[0]) != 4:
        return
    given = int(entry[0][1])
    if given != channels and {given, channels} != {1, 3}:
        raise CommandError(
            f"{path.name}: the images have {given} channel{'s' if given != 1 else ''}, but the "
            f"design's Input takes {channels}, and only grey (1) and RGB (3) convert into each "
            f"other; set the Input's channels to {given}, or give images with "
            f"{'1 or 3' if channels in (1, 3) else channels} channels", EXIT_INVALID)


def _write_training(net, design, data, history, out: Path, curves_png, confusion_png) -> None:
    """Every result file, each written atomically."""
    csv = history.csv()
    trained = design  # loaded for this command alone: it may take the data's class names
    if hasattr(trained, "set_classes"):
        trained.set_classes(list(data.classes))
    files = [
        ("weights.npz", lambda path: write_npz(path, net.weights.items())),
        ("metrics.csv", lambda path: write_atomic(path, lambda h: h.write(csv.encode("utf-8")))),
        ("curves.png", lambda path: write_atomic(
            path, lambda h, png=curves_png(history.rows): h.write(png))),
        ("confusion.png", lambda path: write_atomic(
            path, lambda h, png=confusion_png(history.confusion, data.classes): h.write(png))),
        ("design.json", lambda path: save_design(trained, path)),
    ]
    for name, write in files:
        try:
            write(out / name)
        except OSError as exc:
            raise CommandError(describe_os_error(exc, out / name)) from None
        except DesignError as exc:
            raise CommandError(str(exc)) from None


def _max_side() -> int:
    from designer.io.images import MAX_PICTURE_SIDE
    return MAX_PICTURE_SIDE


def _write_results(net, acts, out: Path) -> tuple[set[str], list[tuple[str, str]]]:
    """activations.npz (streamed), weights.npz and one PNG per node; CommandError on failure.
    Returns the PNG names written and, for pictures that show less than every value, what
    they leave out."""
    from designer.engine.weights import WeightsError
    from designer.io.images import plan_tiles, save_png, tile_maps

    try:
        before = {p.name for p in out.glob("*.png")}
    except OSError:
        before = set()
    target = out / "activations.npz"
    try:
        write_npz(target, acts.items())
    except OSError as exc:
        raise CommandError(describe_os_error(exc, target)) from None
    except ValueError as exc:
        raise CommandError(f"can't save to {target}: {exc}") from None
    try:
        net.save_weights(out / "weights.npz")
    except WeightsError as exc:
        raise CommandError(str(exc)) from None
    used: set[str] = set()
    reduced: list[tuple[str, str]] = []
    for node_id, act in acts.items():
        path = out / _file_name(node_id, used)
        plan = plan_tiles(act[0].shape)
        try:
            save_png(tile_maps(act[0], plan=plan), path)
        except OSError as exc:
            raise CommandError(describe_os_error(exc, path)) from None
        if plan.reduced:
            reduced.append((node_id, plan.note()))
    written = {f"{name}.png" for name in used}
    stale = sorted(p for p in before if p.lower() not in written)
    if stale:
        print(f"Note: {out} also holds {len(stale)} PNG file(s) from an earlier run "
              f"(e.g. {stale[0]}).", file=sys.stderr)
    return written, reduced


# --------------------------------------------------------------------------------- open

def cmd_open(args: argparse.Namespace) -> int:
    """Open the desktop app (on FILE if given; a broken file is explained in a dialog)."""
    if args.file is not None:
        try:
            check_input_file(args.file, "a design file")
        except CommandError as exc:
            _print_error(str(exc))
            return EXIT_BAD_FILE
    try:
        from designer.app.main_window import run_app
    except ImportError as exc:  # e.g. Qt's system libraries are missing
        _print_error(f"the desktop app can't start: {exc}")
        return EXIT_BAD_FILE
    return run_app(args.file)


def cmd_install_desktop(args: argparse.Namespace) -> int:
    """--install-desktop: the launcher, icon, file types and AppStream metadata for this user."""
    return _desktop(args, install=True)


def cmd_uninstall_desktop(args: argparse.Namespace) -> int:
    """--uninstall-desktop: remove what --install-desktop wrote (nothing else)."""
    return _desktop(args, install=False)


def _desktop(args: argparse.Namespace, install: bool) -> int:
    from designer.io import desktop

    option = "--install-desktop" if install else "--uninstall-desktop"
    if args.file is not None:
        _print_error(f"{option} takes no FILE (it was given {args.file!r}); run it alone")
        return EXIT_BAD_FILE
    try:
        report = desktop.install() if install else desktop.uninstall()
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _print_error(f"could not {'install' if install else 'remove'} the desktop files: "
                     f"{where}{exc.strerror or exc}")
        return EXIT_BAD_FILE
    print(desktop.describe(report, installed=install))
    return EXIT_OK


# ------------------------------------------------------------------------------ parsing

def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")
    return values


def _means(text: str) -> list[float]:
    values = _floats(text)
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"every mean must be a finite number, got {text!r}")
    return values


def _stds(text: str) -> list[float]:
    values = _floats(text)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"every std must be a finite number above 0, "
                                         f"got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more, got {text!r}")
    return value


def _finite_float(text: str, zero_allowed: bool) -> float:
    """An option's finite number above 0 (or 0 and above), or argparse's usage error."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value > 0 or (zero_allowed and value == 0))):
        wanted = "a number, 0 or more" if zero_allowed else "a number above 0"
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _finite_float(text, zero_allowed=False)


def _non_negative_float(text: str) -> float:
    return _finite_float(text, zero_allowed=True)


def _parser_for_commands() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-designer",
        description="Design convolutional neural networks and look inside them.",
        epilog="Without a command, opens the desktop app (on FILE if given).")
    _add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("summary", help="print a design's layer table and totals",
                       description="Print the torchinfo-like summary of a design: output shape, "
                                   "parameters, mult-adds and receptive field of every layer. "
                                   "Exit status: 0 valid, 1 the design has errors (still printed), "
                                   "2 the file can't be read.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("templates", help="list the built-in template designs")
    p.add_argument("-v", "--verbose", action="store_true", help="also describe each template")
    p.set_defaults(func=cmd_templates)
    p = sub.add_parser("new", help="write a template design to a file")
    p.add_argument("template", metavar="TEMPLATE", help="a template id (see `cnn-designer templates`)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it")
    p.add_argument("-f", "--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_new)
    p = sub.add_parser("run", help="run a forward pass on an image and save every activation",
                       description="Run the design on an image (PNG, JPEG, BMP, GIF, ...: converted "
                                   "to the Input's channels, resized, scaled to [0, 1]) or a .npy "
                                   "array (used as it is). Writes DIR/activations.npz, "
                                   "DIR/weights.npz and one PNG of activation maps per node, "
                                   "and says which weights it used. "
                                   "Everything is checked before it is allocated: a run that "
                                   "won't fit in free memory is refused at once. "
                                   "Exit status: 0 ran, 1 the design has errors, 2 a bad file or "
                                   "input, or not enough memory.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("--input", required=True, metavar="IMAGE_OR_NPY", help="an image or a .npy array")
    chosen = p.add_mutually_exclusive_group()
    chosen.add_argument("--weights", metavar="W.npz",
                        help="weights to use (default: the trained weights that ship with CNN "
                             "Designer when FILE has the layers they were trained for, as "
                             "LeNet-5, the CIFAR-10 ConvNet and Tiny VGG do; else seeded "
                             "random weights, seed 0)")
    chosen.add_argument("--random", action="store_true",
                        help="use seeded random (untrained) weights even where trained weights "
                             "ship (seed 0, or --seed N)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="use seeded random weights drawn from seed N (the same seed gives the "
                        "same weights); giving it asks for random weights, as --random does")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the results to")
    p.add_argument("--mean", type=_means, metavar="M[,M,M]",
                   help="per-channel mean to subtract from an image (e.g. ImageNet's "
                        "0.485,0.456,0.406)")
    p.add_argument("--std", type=_stds, metavar="S[,S,S]",
                   help="per-channel standard deviation to divide an image by, above 0 "
                        "(e.g. 0.229,0.224,0.225)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("train", help="train a design on data and save its weights and metrics",
                       description="Train the design on DATA (builtin:digits, builtin:shapes, a "
                                   "folder of class sub-folders of images, or an .npz file with x "
                                   "and y). Writes DIR/weights.npz, DIR/metrics.csv, "
                                   "DIR/curves.png, DIR/confusion.png and DIR/design.json (the "
                                   "design with the data's class names). Ctrl+C stops after the "
                                   "current batch and saves what was learnt. Exit status: 0 "
                                   "trained, 1 the design has errors or doesn't fit the data, 2 "
                                   "a bad file or data, or not enough memory.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("--data", required=True, metavar="DATA",
                   help="builtin:digits, builtin:shapes, a folder DIR/<class>/*.png or an .npz")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the results to")
    p.add_argument("--epochs", type=_positive_int, default=5, metavar="N",
                   help="passes over the training data (default 5)")
    p.add_argument("--batch-size", type=_positive_int, default=64, metavar="B",
                   help="images per optimizer step (default 64)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam",
                   help="the optimizer (default adam)")
    p.add_argument("--lr", type=_positive_float, metavar="LR",
                   help="learning rate (default: 0.01 for sgd, 0.001 for adam and adamw)")
    p.add_argument("--momentum", type=_non_negative_float, default=None, metavar="M",
                   help="SGD momentum (default 0.9; sgd only)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=None, metavar="WD",
                   help="weight decay (default 0, or 0.01 for adamw)")
    p.add_argument("--schedule", choices=("none", "step", "cosine"), default="none",
                   help="how the learning rate changes, once per epoch: none (it stays --lr; "
                        "the default), step (multiplied by --gamma every --step-size epochs), "
                        "cosine (down to 0 along a half cosine over the epochs)")
    p.add_argument("--step-size", type=_positive_int, metavar="N",
                   help="with --schedule step: epochs between two steps (default: a third of "
                        "the epochs, at least 1)")
    p.add_argument("--gamma", type=_positive_float, metavar="G",
                   help="with --schedule step: what each step multiplies the learning rate by "
                        "(default 0.1)")
    p.add_argument("--clip-norm", type=_positive_float, metavar="X",
                   help="before each step, scale the gradients down so their combined 2-norm "
                        "is at most X, as torch.nn.utils.clip_grad_norm_ (default: no clipping)")
    p.add_argument("--augment", action="store_true",
                   help="shift each training image by a few pixels at random every time it is "
                        "used (and mirror it left-right where that keeps its class, as for "
                        "builtin:shapes; never for digits, folders or .npz files)")
    p.add_argument("--weights", metavar="W.npz", help="weights to start from (default: seeded random)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed for the initial weights, the shuffling, Dropout and augmentation "
                        "(default 0)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("export", help="write a design as PyTorch code, ONNX, or a diagram",
                       description="Write the design in the format OUT's extension names: .py "
                                   "PyTorch code (an nn.Module whose state_dict keys are the "
                                   "weights file's, and build_model(weights_path)), .onnx an "
                                   "ONNX model with its weights, .svg / .pdf / .png the diagram "
                                   "as the canvas draws it. Exit status: 0 written, 1 the design "
                                   "has errors (code and ONNX only: a diagram is still drawn), "
                                   "2 a bad file, an unwritable OUT or an unknown extension.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the file to write: .py, .onnx, .svg, .pdf or .png")
    p.add_argument("--weights", metavar="W.npz",
                   help="the weights to put in an ONNX model (default: those of an .onnx FILE, "
                        "else the trained weights that ship for the design, else seed 0)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="put seeded random weights in an ONNX model instead")
    p.add_argument("--scale", type=_positive_float, metavar="S",
                   help="pixels per canvas unit of a PNG diagram (default 1)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="read an ONNX model into a design file and its weights",
                       description="Read an ONNX model into a design file (its layers, with "
                                   "node ids from the ONNX node names and an automatic layout) "
                                   "and a weights file. Exit status: 0 imported, 2 an unreadable "
                                   "or unsupported model (the message names the ONNX node and "
                                   "its op type) or an unwritable output.")
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model to read")
    p.add_argument("-o", "--output", required=True, metavar="DESIGN.json",
                   help="the design file to write")
    p.add_argument("--weights", metavar="W.npz",
                   help="the weights file to write (default: DESIGN's path with .npz)")
    p.set_defaults(func=cmd_import)
    return parser


def _parser_for_app() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-designer",
        usage="cnn-designer [FILE]\n       cnn-designer {summary,templates,new,run,train,export,import} ...",
        description="Design convolutional neural networks and look inside them. Opens the "
                    "desktop app (on FILE if given).",
        epilog="commands: summary FILE [--json] | templates | new TEMPLATE -o FILE | "
               "run FILE --input IMAGE_OR_NPY --out DIR | train FILE --data DATA --out DIR | "
               "export FILE -o OUT.{py,onnx,svg,pdf,png} | import MODEL.onnx -o DESIGN.json "
               "(cnn-designer COMMAND --help for more)")
    _add_version(parser)
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="a design file (.json) or an ONNX model (.onnx) to open")
    parser.set_defaults(func=cmd_open)
    desktop = parser.add_mutually_exclusive_group()
    desktop.add_argument("--install-desktop", dest="func", action="store_const",
                         const=cmd_install_desktop,
                         help="add CNN Designer to your desktop's menu (launcher, icon, design "
                              "and ONNX file types) for the current user, in $XDG_DATA_HOME "
                              "(default ~/.local/share), and exit")
    desktop.add_argument("--uninstall-desktop", dest="func", action="store_const",
                         const=cmd_uninstall_desktop,
                         help="remove what --install-desktop added, and exit")
    return parser


def _add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"cnn-designer {__version__}",
                        help="print the version and exit")


def unknown_command(argv: Sequence[str]) -> str | None:
    """The message for a first word that is meant as a command but isn't one (``sumary x.json``:
    "unknown command 'sumary'; did you mean summary?"), or None when it is a command, an option
    or a file to open. A word that names an existing file, or looks like a file name (it has a
    dot or a path separator), is a file even if it resembles a command."""
    if not argv:
        return None
    word = argv[0]
    if word in COMMANDS or word.startswith("-") or not word:
        return None
    try:
        exists = os.path.lexists(word)
    except (ValueError, TypeError):  # a NUL in the name: the file check explains it
        return None
    if exists or "." in word or "/" in word or os.sep in word:
        return None
    close = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.6)
    if close:
        return f"unknown command {word!r}; did you mean {close[0]}?"
    if len(argv) > 1:  # `cnn-designer foo bar`: not one file to open either
        return (f"unknown command {word!r}; the commands are {', '.join(COMMANDS)} "
                f"(cnn-designer --help), or give one FILE to open it in the app")
    return None


# --------------------------------------------------------------------------- last guard

def report_folder() -> Path:
    """Where the last guard writes tracebacks: ``cnn-designer-error-reports`` in the system's
    temporary folder."""
    return Path(tempfile.gettempdir()) / "cnn-designer-error-reports"


def _write_report(exc: BaseException, argv: Sequence[str]) -> Path | None:
    """The traceback and the command in a new file; its path, or None if it can't be written."""
    import platform

    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = (f"CNN Designer error report\n{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            f"command: cnn-designer {' '.join(argv)}\n"
            f"Python {platform.python_version()} on {platform.platform()}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    folder = report_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{stamp}-{os.getpid()}.txt"
        with open(path, "x", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
        return path
    except OSError:
        return None


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not break the guard
        text = ""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > 300:
        text = text[:300] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dispatch(argv: list[str]) -> int:
    wrong = unknown_command(argv)
    if wrong is not None:
        _print_error(wrong)
        return EXIT_BAD_FILE
    parser = _parser_for_commands() if argv and argv[0] in COMMANDS else _parser_for_app()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    return args.func(args)


def _quiet_stdout() -> None:
    """After a broken pipe: send what is left to nowhere, so Python's exit flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    _configure_stdout()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except BrokenPipeError:  # e.g. `cnn-designer summary x.json | head`
        _quiet_stdout()
        return EXIT_OK
    except MemoryError as exc:  # NotEnoughMemory says how much; a bare MemoryError doesn't
        text = str(exc)
        _print_error(f"not enough memory: {text}" if text else
                     "not enough memory to finish this; close other programs, or use a smaller "
                     "design or input")
        return EXIT_BAD_FILE
    except Exception as exc:  # the last guard: a bug, reported, never a traceback
        path = _write_report(exc, argv)
        where = (f"the details are in {path}" if path is not None
                 else f"the details could not be written to {report_folder()}")
        _print_error(f"unexpected error ({_describe(exc)}); {BUG}; {where}")
        return EXIT_BAD_FILE


#: commands that leave nothing to tidy once they return (every file written, synced and closed,
#: no window): the process may end without freeing its objects one by one, which on a
#: 100,000-node design takes a third of a second
QUICK_EXIT = frozenset({"summary", "templates", "new", "run", "train", "export", "import"})


def console_main() -> None:
    """The ``cnn-designer`` console script and ``python -m designer``: :func:`main`, then exit."""
    argv = sys.argv[1:]
    status = main(argv)
    if argv and argv[0] in QUICK_EXIT:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said
                pass
        os._exit(status)
    sys.exit(status)
