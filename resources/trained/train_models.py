"""Train the templates that suit the built-in data and write the weights that ship with them.

Usage: .venv/bin/python resources/trained/train_models.py [--only TEMPLATE_ID ...] [OUTPUT_DIR]
(default output: this script's folder)

Writes one ``<template id>.npz`` per model (contract §3 keys) and ``index.json``: for each model
its template id, weights file, class names, data source, validation accuracy and loss, the
training settings and the fingerprint of the design's structure
(``designer.io.trained.fingerprint``), by which ``designer.build(design, weights="trained")``
finds the weights and detects a changed template. The trained templates get their data's class
names ("classes") in resources/templates/. With ``--only``, the other models' entries
are kept from the existing index.

Everything is seeded (data drawing, initial weights, shuffling) and NumPy's BLAS runs on one
thread, so a run on the same machine gives the same weights; the timings are printed, not stored.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# one BLAS thread: sums in a fixed order, so a run gives the same weights on every run
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the checkout's designer

import designer  # noqa: E402
from designer.engine.weights import save_weights_file  # noqa: E402
from designer.io.design_file import design_to_json, write_text_atomic  # noqa: E402
from designer.io.templates import find_template  # noqa: E402
from designer.io.trained import FORMAT, fingerprint  # noqa: E402
from designer.train.loop import evaluate  # noqa: E402

#: what is trained, and how: template id, data, epochs, batch size, Adam's lr, augmentation
MODELS = [
    {"template": "lenet5", "data": "builtin:digits", "epochs": 3, "batch_size": 32,
     "lr": 3e-3, "augment": False},
    {"template": "cifar10-convnet", "data": "builtin:shapes", "epochs": 40, "batch_size": 32,
     "lr": 2e-3, "augment": True},
    {"template": "tiny-vgg", "data": "builtin:shapes", "epochs": 30, "batch_size": 32,
     "lr": 2e-3, "augment": True},
]
SEED = 0          # initial weights and shuffling
DATA_SEED = 0     # the built-in data's drawing


def _report(event) -> None:
    if event.kind == "epoch":
        row = event.row
        print(f"  epoch {event.epoch}/{event.epochs}: train accuracy {row['train_accuracy']:.2%}, "
              f"validation accuracy {row['val_accuracy']:.2%}, {event.seconds:.0f} s",
              file=sys.stderr, flush=True)


def train_one(spec: dict, out: Path) -> dict:
    template = find_template(spec["template"])
    design = template.load()
    data = designer.load_dataset(spec["data"], design, seed=DATA_SEED, augment=spec["augment"])
    net = designer.build(design, seed=SEED)
    started = time.perf_counter()
    designer.train(net, data, epochs=spec["epochs"], batch_size=spec["batch_size"],
                   optimizer=designer.Adam(lr=spec["lr"]), seed=SEED, schedule="cosine",
                   progress=_report)
    seconds = time.perf_counter() - started
    x_val, y_val = data.val
    loss, accuracy, _ = evaluate(net, x_val, y_val, len(data.classes), 256)
    weights_name = f"{spec['template']}.npz"
    save_weights_file(net.weights, out / weights_name)
    print(f"{spec['template']} on {spec['data']}: validation accuracy {accuracy:.2%}, "
          f"loss {loss:.4f}, {seconds:.1f} s training", flush=True)
    return {
        "template": spec["template"],
        "weights": weights_name,
        "fingerprint": fingerprint(design),
        "data": spec["data"],
        "data_seed": DATA_SEED,
        "classes": list(data.classes),
        "val_accuracy": round(float(accuracy), 4),
        "val_loss": round(float(loss), 4),
        "val_images": int(len(y_val)),
        "training": {"epochs": spec["epochs"], "batch_size": spec["batch_size"],
                     "optimizer": "adam", "lr": spec["lr"], "schedule": "cosine",
                     "augment": spec["augment"], "seed": SEED},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(HERE))
    parser.add_argument("--only", nargs="+", metavar="TEMPLATE_ID",
                        choices=[m["template"] for m in MODELS])
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    old = {}
    if args.only and index_path.is_file():
        old = {e["template"]: e for e in json.loads(index_path.read_text("utf-8"))["models"]}
    entries = []
    for spec in MODELS:
        if args.only and spec["template"] not in args.only:
            if spec["template"] in old:
                entries.append(old[spec["template"]])
            continue
        entries.append(train_one(spec, out))
        write_index(index_path, entries)  # after each model, so a stopped run keeps what it has
    write_index(index_path, entries)
    name_classes(entries)
    return 0


def name_classes(entries: list[dict]) -> None:
    """Give each trained template its data's class names ("classes", contract §2), so the
    summary and the app show them; nothing else in the files changes."""
    for entry in entries:
        template = find_template(entry["template"])
        design = template.load()
        if list(design.classes or ()) == entry["classes"]:
            continue
        design.set_classes(entry["classes"])
        write_text_atomic(template.path, design_to_json(design))


def write_index(path: Path, entries: list[dict]) -> None:
    text = json.dumps({"format": FORMAT, "version": 1, "models": entries}, indent=2) + "\n"
    write_text_atomic(path, text)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
