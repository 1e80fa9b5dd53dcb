"""The command line (contract §4): ``cnn-designer [FILE]``, ``summary``, ``templates``, ``new``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from designer.core.analysis import Analysis
from designer.core.summary import format_table, summarize
from designer.io.design_file import DesignError, load_design, save_design
from designer.io.templates import find_template, list_templates

EXIT_OK, EXIT_INVALID, EXIT_BAD_FILE = 0, 1, 2
COMMANDS = ("summary", "templates", "new", "run")


def _print_error(message: str) -> None:
    print(f"cnn-designer: {message}", file=sys.stderr)


def _configure_stdout() -> None:
    """Tables use × and ✗; never crash on a terminal that can't print them."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass


def _load(path: str):
    """The design at ``path``, or None after printing why it can't be read."""
    try:
        return load_design(path)
    except DesignError as exc:
        _print_error(str(exc))
        return None


def cmd_summary(args: argparse.Namespace) -> int:
    design = _load(args.file)
    if design is None:
        return EXIT_BAD_FILE
    analysis = Analysis(design)
    if args.json:
        print(json.dumps(summarize(design, analysis), indent=2, ensure_ascii=False))
    else:
        print(format_table(design, analysis))
    return EXIT_OK if analysis.valid else EXIT_INVALID


def cmd_templates(args: argparse.Namespace) -> int:
    templates = list_templates()
    width = max(len(t.id) for t in templates)
    for t in templates:
        design = t.load()
        totals = Analysis(design).totals()
        print(f"{t.id.ljust(width)}  {t.title} ({totals['params']:,} parameters)")
        if args.verbose:
            print(f"{' ' * width}  {t.description}")
    print(f"\nWrite one to a file with: cnn-designer new {templates[0].id} -o my-design.json")
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    try:
        template = find_template(args.template)
    except DesignError as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    out = Path(args.output)
    if out.exists() and not args.force:
        _print_error(f"{out} already exists; choose another name or add --force to replace it")
        return EXIT_BAD_FILE
    try:
        save_design(template.load(), out)
    except DesignError as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    print(f"Wrote {template.title} to {out}")
    return EXIT_OK


def _file_name(node_id: str, used: set[str]) -> str:
    """A safe, unique PNG file name for a node id."""
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in node_id).strip(".") or "node"
    name, n = stem, 2
    while name.lower() in used:
        name, n = f"{stem}_{n}", n + 1
    used.add(name.lower())
    return name + ".png"


def cmd_run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from designer.core.atomic import write_atomic
    from designer.engine.network import (Cancelled, InputError, InvalidDesign, NotEnoughMemory,
                                         build)
    from designer.engine.weights import WeightsError, save_weights_file
    from designer.io.images import ImageError, load_input, save_png, tile_maps

    started = time.perf_counter()
    design = _load(args.file)
    if design is None:
        return EXIT_BAD_FILE
    try:
        net = build(design, weights=args.weights, seed=args.seed)
    except InvalidDesign as exc:
        _print_error(str(exc))
        return EXIT_INVALID
    except WeightsError as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    out = Path(args.out)
    try:
        x = load_input(args.input, net.input_shape, args.mean, args.std)
        if out.exists() and not out.is_dir():
            _print_error(f"{out} is a file, not a folder; choose a folder for the results")
            return EXIT_BAD_FILE
        out.mkdir(parents=True, exist_ok=True)
        before = {p.name for p in out.glob("*.png")}
        forward_started = time.perf_counter()
        acts = net.forward(x)
        seconds = time.perf_counter() - forward_started
        write_atomic(out / "activations.npz", lambda handle: np.savez(handle, **acts))
        save_weights_file(net.weights, out / "weights.npz")
        used: set[str] = set()
        for node_id, act in acts.items():
            save_png(tile_maps(act[0]), out / _file_name(node_id, used))
        written = {f"{name}.png" for name in used}
    except (ImageError, InputError, WeightsError, NotEnoughMemory) as exc:
        _print_error(str(exc))
        return EXIT_BAD_FILE
    except Cancelled:
        return 130
    except OSError as exc:
        _print_error(f"can't write to {out}: {exc.strerror or exc}")
        return EXIT_BAD_FILE
    c, h, w = net.input_shape
    total = time.perf_counter() - started
    print(f"Ran {len(acts)} nodes on {Path(args.input).name} ({x.shape[0]} × {c}×{h}×{w}): "
          f"forward pass {seconds:.2f} s, {total:.2f} s in all.")
    print(f"Wrote {out / 'activations.npz'}, {out / 'weights.npz'} and {len(acts)} PNG files "
          f"of activation maps (first sample, each map on its own scale) to {out}.")
    stale = sorted(p for p in before if p.lower() not in written)
    if stale:
        print(f"Note: {out} also holds {len(stale)} PNG file(s) from an earlier run "
              f"(e.g. {stale[0]}).", file=sys.stderr)
    return EXIT_OK


def cmd_open(args: argparse.Namespace) -> int:
    """Open the desktop app (on FILE if given; a broken file is explained in a dialog)."""
    if args.file is not None and not Path(args.file).exists():
        _print_error(f"{args.file}: no such file")
        return EXIT_BAD_FILE
    try:
        from designer.app.main_window import run_app
    except ImportError as exc:  # e.g. Qt's system libraries are missing
        _print_error(f"the desktop app can't start: {exc}")
        return EXIT_BAD_FILE
    return run_app(args.file)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")


def _parser_for_commands() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-designer",
        description="Design convolutional neural networks and look inside them.",
        epilog="Without a command, opens the desktop app (on FILE if given).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("summary", help="print a design's layer table and totals",
                       description="Print the torchinfo-like summary of a design: output shape, "
                                   "parameters, mult-adds and receptive field of every layer. "
                                   "Exit status: 0 valid, 1 the design has errors (still printed), "
                                   "2 the file can't be read.")
    p.add_argument("file", metavar="FILE", help="a design file (.json)")
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
                                   "DIR/weights.npz and one PNG of activation maps per node. "
                                   "Exit status: 0 ran, 1 the design has errors, 2 a bad file or "
                                   "input.")
    p.add_argument("file", metavar="FILE", help="a design file (.json)")
    p.add_argument("--input", required=True, metavar="IMAGE_OR_NPY", help="an image or a .npy array")
    p.add_argument("--weights", metavar="W.npz", help="weights to use (default: seeded random)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed for the random weights (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the results to")
    p.add_argument("--mean", type=_floats, metavar="M[,M,M]",
                   help="per-channel mean to subtract from an image (e.g. ImageNet's "
                        "0.485,0.456,0.406)")
    p.add_argument("--std", type=_floats, metavar="S[,S,S]",
                   help="per-channel standard deviation to divide an image by "
                        "(e.g. 0.229,0.224,0.225)")
    p.set_defaults(func=cmd_run)
    return parser


def _parser_for_app() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-designer",
        usage="cnn-designer [FILE]\n       cnn-designer {summary,templates,new,run} ...",
        description="Design convolutional neural networks and look inside them. Opens the "
                    "desktop app (on FILE if given).",
        epilog="commands: summary FILE [--json] | templates | new TEMPLATE -o FILE | "
               "run FILE --input IMAGE_OR_NPY --out DIR (cnn-designer COMMAND --help for more)")
    parser.add_argument("file", nargs="?", metavar="FILE", help="a design file to open")
    parser.set_defaults(func=cmd_open)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _configure_stdout()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser_for_commands() if argv and argv[0] in COMMANDS else _parser_for_app()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `cnn-designer summary x.json | head`
        return EXIT_OK
