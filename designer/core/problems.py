"""Errors and warnings attached to nodes, and the number formatting their arithmetic uses."""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

ERROR = "error"
WARNING = "warning"


class Problem(NamedTuple):
    """One thing wrong with a node. ``text`` does not repeat the node id; ``str()`` prefixes it.
    (A named tuple: immutable and hashable, and made several times faster than a frozen
    dataclass; a broken 100,000-node design makes one for every node.)"""

    node_id: str
    severity: str  # ERROR or WARNING
    code: str  # stable machine-readable kind, e.g. "output-too-small"
    text: str

    def __str__(self) -> str:
        return f"{self.node_id}: {self.text}"


def num(value: int | float | Fraction) -> str:
    """A number as a person writes it: thousands separators, at most two decimals."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            value = value.numerator
        else:
            value = float(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            value = int(value)
        else:
            text = f"{value:,.2f}".rstrip("0").rstrip(".")
            return "0" if text in ("-0", "") else text
    return f"{value:,}"


def shape_text(shape: tuple[int, ...] | None) -> str:
    """``[3, 32, 32]``-style text, or ``?`` where the shape is unknown."""
    if shape is None:
        return "?"
    return "[" + ", ".join(str(s) for s in shape) + "]"


def pair_text(pair: tuple[int, int], sep: str = "×") -> str:
    """``5×5`` for a square pair, ``3×5`` otherwise."""
    return f"{pair[0]}{sep}{pair[1]}"


#: how much of another node's id a message quotes: a message that names some other node (the
#: cycle it is on, where its inputs are cut off, the network's output) may be repeated on
#: every node of a large design, so its size must not grow with the length of ids
ID_SHOWN = 40


def short_id(node_id: str) -> str:
    """A node id as quoted in another node's message: whole up to :data:`ID_SHOWN` characters,
    cut with an ellipsis beyond."""
    return node_id if len(node_id) <= ID_SHOWN else node_id[:ID_SHOWN - 1] + "…"


def name_list(ids: "list[str] | tuple[str, ...]", shown: int = 5) -> str:
    """``a, b, c`` for a few ids; the first ``shown`` (each cut by :func:`short_id`) and ``…``
    (with how many more) for many, so a message's size does not grow with the design."""
    names = ", ".join(short_id(n) for n in ids[:shown])
    if len(ids) > shown:
        names += f", … ({len(ids) - shown:,} more)"
    return names


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
