"""``designer.train`` (contract §5, §6): mini-batch training of a network on a data set.

Each epoch shuffles the training set (a generator seeded by ``seed``, so the same seed gives the
same run), takes one optimizer step per mini-batch of ``net.gradients`` (training mode; Dropout's
masks drawn from the same seeded generator), optionally augmented, clipped and scheduled, then
measures the validation set in eval mode (``net.forward``). ``progress(event)`` is called after
every batch and every epoch; returning False stops the run cleanly after the current batch: the
weights keep what was learnt, and the epoch in progress is measured and recorded as a partial
one. ``pause()``, when given, is called after each batch and blocks while the run is paused (the
app's Pause); the time it blocks is left out of every time the run reports.

Before the first step, a design the data can't train is refused with a TrainingError (output
not flat, output size not the number of classes, images not shaped for the Input) and a batch
whose training pass won't fit in free memory with NotEnoughMemory (both numbers).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from designer.data.dataset import augment as augment_images
from designer.engine import network as _network
from designer.engine.memory import NotEnoughMemory, mib
from designer.engine.optim import Adam, CosineAnnealingLR, StepLR, clip_grad_norm
from designer.engine.training import TrainingError, cross_entropy

#: the columns of a history row, in metrics.csv's order (contract §4)
COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


@dataclass
class Event:
    """What ``progress`` is told. ``kind`` is ``"batch"`` (after each optimizer step) or
    ``"epoch"`` (after each epoch's validation; ``row`` is its history row). ``epoch`` counts
    from 1, ``batch`` from 1 within the epoch; ``loss`` and ``accuracy`` are the epoch's running
    training means so far; ``seconds`` the time since training started and ``remaining`` an
    estimate of the time left (None before the first batch is done). An epoch event also
    carries the validation's ``confusion`` matrix (int64 (K, K), row = true class) and
    ``probabilities``: float32 (N_val, K), each validation image's class probabilities (the
    softmax of the logits, eval mode), in the order of ``data.val``. A batch event carries that
    batch's own ``step_loss`` and ``step_accuracy`` (for curves per step). The epoch a stop
    cut short is measured and reported too: its epoch event has ``partial`` True and ``batch``
    the number of batches it took (``progress``'s answer to it changes nothing: the run ends)."""

    kind: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    accuracy: float
    seconds: float
    remaining: float | None
    row: dict[str, float] | None = None
    confusion: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    step_loss: float | None = None
    step_accuracy: float | None = None
    partial: bool = False


@dataclass
class History:
    """The record of a run: ``rows``, one dict per epoch with the keys of :data:`COLUMNS`
    (epoch counts from 1; accuracies are fractions 0–1; ``seconds`` is the epoch's training and
    validation time); ``confusion``, the last validation's confusion matrix (int64 (K, K), row
    = true class, column = predicted); ``classes``; ``stopped`` (True when ``progress`` ended the
    run early); ``partial`` (True when the last row is an epoch cut short)."""

    classes: list[str]
    rows: list[dict[str, float]] = field(default_factory=list)
    confusion: np.ndarray | None = None
    stopped: bool = False
    partial: bool = False

    def column(self, name: str) -> list[float]:
        return [row[name] for row in self.rows]

    def csv(self) -> str:
        """The rows as metrics.csv holds them: the header line, then one line per epoch."""
        lines = [",".join(COLUMNS)]
        for row in self.rows:
            lines.append(",".join([str(int(row["epoch"]))] + [
                _number(row[key]) for key in COLUMNS[1:]]))
        return "\n".join(lines) + "\n"


def duration(seconds: float | None) -> str:
    """A time as progress lines write it: ``0:42``, ``12:05``, ``1h03m``; ``…`` when not known
    yet."""
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.6g}"


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number, 1 or more, not {value!r}")
    return int(value)


def logits_of(net: Any) -> str:
    """The node whose output is the logits: the output, or the input of a final Softmax."""
    out = net.analysis.output
    if net.infos[out].type == "Softmax":
        return net.design.sources(out)[0]
    return out


def check_fit(net: Any, data: Any, batch_size: int) -> None:
    """TrainingError unless ``net`` can be trained on ``data`` (output flat with one score per
    class, images shaped for the Input, labels in range); NotEnoughMemory unless a training
    pass of ``batch_size`` fits in free memory."""
    out = net.analysis.output
    shape = tuple(net.infos[out].shape)
    classes = list(data.classes)
    if len(shape) != 1:
        dims = "×".join(str(s) for s in shape)
        raise TrainingError(
            f"the network's output ({out}) has shape [{dims}], but training needs a flat output "
            f"of one score per class ({len(classes)} for this data): end the design with Flatten "
            f"and Linear(out_features={len(classes)})")
    if shape[0] != len(classes):
        raise TrainingError(
            f"the network's output ({out}) has {shape[0]} values, but the data has "
            f"{len(classes)} classes ({', '.join(classes[:12])}{', …' if len(classes) > 12 else ''})"
            f": set the last layer's out_features to {len(classes)}")
    c, h, w = net.input_shape
    for part, (x, y) in (("training", data.train), ("validation", data.val)):
        x = np.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise TrainingError(
                f"the {part} images have shape {tuple(x.shape)}, but the design's Input takes "
                f"(N, {c}, {h}, {w}); load the data for this design (designer.load_dataset(source, "
                f"design)) so it is converted to the Input's channels and size")
        y = np.asarray(y)
        if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            raise TrainingError(f"the {part} labels have shape {tuple(y.shape)} ({y.dtype}); "
                                f"they must be {x.shape[0]} whole numbers, one per image")
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise TrainingError(f"the {part} labels include {bad}, but with {len(classes)} "
                                f"classes labels are 0 … {len(classes) - 1}")
    if len(data.train[1]) == 0:
        raise TrainingError("the training set is empty")
    need = net.estimate_training_bytes(batch_size)
    free = _network.available_memory()
    if free is not None and need > free:
        raise NotEnoughMemory(
            f"training with batches of {batch_size} needs about {mib(need)} (every activation "
            f"kept for the backward pass, the weights and their gradients), but only {mib(free)} "
            f"is free; use a smaller batch size or a smaller design, or close other programs")


def evaluate(net: Any, x: np.ndarray, y: np.ndarray, classes: int, batch_size: int
             ) -> tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, confusion matrix (classes, classes)) of ``net`` on
    (x, y) in eval mode, a batch at a time."""
    loss, accuracy, confusion, _ = _evaluate(net, x, y, classes, batch_size)
    return loss, accuracy, confusion


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, computed stably; float32."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _evaluate(net: Any, x: np.ndarray, y: np.ndarray, classes: int, batch_size: int
              ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """:func:`evaluate` and each image's class probabilities, float32 (N, classes)."""
    logits_id = logits_of(net)
    out = net.analysis.output
    confusion = np.zeros((classes, classes), np.int64)
    probabilities = np.zeros((len(y), classes), np.float32)
    total = 0.0
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], np.asarray(y[start:start + batch_size], np.int64)
        acts = net.forward(xb)
        logits = acts[logits_id]
        loss, _ = cross_entropy(logits, yb)
        total += loss * len(yb)
        predicted = np.argmax(acts[out], axis=1)
        np.add.at(confusion, (yb, predicted), 1)
        probabilities[start:start + len(yb)] = softmax(logits)
    n = max(1, len(y))
    return total / n, float(np.trace(confusion)) / n, confusion, probabilities


def _schedule(schedule: Any, optimizer: Any, epochs: int) -> Any:
    if schedule is None:
        return None
    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs)
    if schedule == "step":
        return StepLR(optimizer, step_size=max(1, epochs // 3))
    if hasattr(schedule, "step"):
        return schedule
    raise ValueError(f"schedule must be None, 'step', 'cosine' or a designer.StepLR / "
                     f"CosineAnnealingLR, not {schedule!r}")


def train(net: Any, data: Any, epochs: int = 5, batch_size: int = 64, optimizer: Any = None,
          seed: int = 0, progress: Callable[[Event], Any] | None = None,
          schedule: Any = None, clip_norm: float | None = None,
          augment: bool | None = None, pause: Callable[[], Any] | None = None) -> History:
    """Train ``net`` (from ``designer.build``) on ``data`` (from ``designer.load_dataset``) in
    place and return its :class:`History` (contract §5).

    ``optimizer``: a ``designer.SGD``/``Adam``/``AdamW`` (default ``Adam(lr=1e-3)``);
    ``schedule``: None, ``"step"`` (÷10 every third of the epochs), ``"cosine"`` (to 0 over the
    epochs) or a ``designer.StepLR``/``CosineAnnealingLR`` made on ``optimizer``, stepped once per
    epoch; ``clip_norm``: clip the gradients' global 2-norm to this before each step;
    ``augment``: shift (and flip where the data allows) each training batch — None leaves it to
    ``data.augment``. ``progress(event)`` (an :class:`Event`) is called after each batch and
    each epoch; returning False stops after the current batch. ``pause()`` is called after
    each batch (after ``progress``) and may block while the run is paused: the time it takes is
    left out of ``seconds``, ``remaining`` and the rows' ``seconds``.

    Raises TrainingError (design unfit for the data), NotEnoughMemory, ValueError (bad
    arguments) before any step; a non-finite loss stops the run with a TrainingError saying so
    (the weights then hold the step that produced it)."""
    epochs = _positive("epochs", epochs)
    batch_size = _positive("batch_size", batch_size)
    if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and clip_norm > 0):
        raise ValueError(f"clip_norm must be a number above 0, not {clip_norm!r}")
    if optimizer is None:
        optimizer = Adam(lr=1e-3)
    scheduler = _schedule(schedule, optimizer, epochs)
    check_fit(net, data, batch_size)
    x_train, y_train = data.train
    x_val, y_val = data.val
    y_train = np.asarray(y_train, np.int64)
    k = len(data.classes)
    if augment is None:
        shaped = data.augment_batch
    elif augment:
        shift = max(1, int(getattr(data, "shift", 0) or 2))
        flip = bool(getattr(data, "flip", False))
        shaped = lambda xb, r: augment_images(xb, r, shift, flip)  # noqa: E731
    else:
        shaped = lambda xb, r: xb  # noqa: E731

    has_batch_norm = any(info.type == "BatchNorm2d" for info in net.infos.values())
    rng = np.random.default_rng(seed)
    history = History(classes=list(data.classes))
    n = len(y_train)
    batches = math.ceil(n / batch_size)
    paused = [0.0]  # seconds spent in pause(), left out of every time reported

    def clock() -> float:
        return time.perf_counter() - paused[0]

    started = clock()
    steps_done = 0
    eval_seconds = None  # how long a validation took, for the time-left estimate

    def remaining(epoch: int, batch: int) -> float | None:
        if steps_done == 0:
            return None
        per_step = (clock() - started - (eval_seconds or 0) * (epoch - 1)) / steps_done
        steps_left = (epochs - epoch) * batches + (batches - batch)
        evals_left = epochs - epoch + 1
        return max(0.0, per_step * steps_left + (eval_seconds or 0) * evals_left)

    for epoch in range(1, epochs + 1):
        epoch_started = clock()
        order = rng.permutation(n)
        loss_sum = 0.0
        correct = 0
        seen = 0
        stop = False
        done = 0  # batches taken (or passed over) in this epoch
        for b in range(batches):
            done = b + 1
            index = np.sort(order[b * batch_size:(b + 1) * batch_size])
            xb = shaped(x_train[index], rng)
            yb = y_train[index]
            if len(yb) < 2 and b > 0 and has_batch_norm:  # BatchNorm can't train on one image
                continue
            # the batch's accuracy from the training pass's own logits (training mode, as the
            # loss: PyTorch's usual running accuracy), as the network stood before this step
            loss, grads, logits = net.gradients_and_logits(xb, yb, rng=rng)
            predicted = np.argmax(logits, axis=1)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch}, batch {b + 1}: training diverged; "
                    f"use a smaller learning rate (or gradient clipping)")
            if clip_norm is not None:
                clip_grad_norm(grads, clip_norm)
            optimizer.step(net, grads)
            steps_done += 1
            hits = int(np.count_nonzero(predicted == yb))
            loss_sum += loss * len(yb)
            correct += hits
            seen += len(yb)
            if progress is not None:
                event = Event("batch", epoch, epochs, b + 1, batches, loss_sum / seen,
                              correct / seen, clock() - started, remaining(epoch, b + 1),
                              step_loss=loss, step_accuracy=hits / len(yb))
                if progress(event) is False:
                    stop = True
                    history.partial = b + 1 < batches
                    break
            if pause is not None:
                before = time.perf_counter()
                go_on = pause()
                paused[0] += time.perf_counter() - before
                if go_on is False:
                    stop = True
                    history.partial = b + 1 < batches
                    break
        eval_started = clock()
        val_loss, val_accuracy, confusion, probabilities = _evaluate(
            net, x_val, y_val, k, batch_size)
        eval_seconds = clock() - eval_started
        row = {"epoch": epoch, "train_loss": loss_sum / max(1, seen),
               "train_accuracy": correct / max(1, seen), "val_loss": val_loss,
               "val_accuracy": val_accuracy, "seconds": clock() - epoch_started}
        history.rows.append(row)
        history.confusion = confusion
        if scheduler is not None and not stop:
            scheduler.step()
        if progress is not None:
            # a stopped epoch is reported as any other (what the weights now give), with the
            # batches it took: the last numbers shown are the weights' own
            event = Event("epoch", epoch, epochs, done if stop else batches, batches,
                          row["train_loss"], row["train_accuracy"], clock() - started,
                          remaining(epoch, batches) if epoch < epochs and not stop else 0.0,
                          row, confusion, probabilities, partial=stop and done < batches)
            if progress(event) is False and epoch < epochs:
                stop = True
        if stop:
            history.stopped = True
            break
    return history
