"""Errors and warnings attached to nodes, and the number formatting their arithmetic uses."""
from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple, Union

ERROR = "error"
WARNING = "warning"


# ---------------------------------------------------------------------------- fixes
#
# A fix is data, not text: the edits that would carry out one piece of a message's advice. They
# are checked on a copy of the design before anyone is offered them (core/fixes.py); a message
# words its advice from its fixes, so a suggestion that fails the check leaves the text too.


class SetParam(NamedTuple):
    """Set one parameter of a node. A pair is given as a tuple and written as ``[h, w]``."""

    node_id: str
    name: str
    value: Any


class InsertLayer(NamedTuple):
    """Put a new layer of ``type`` in the middle of the connection ``source → target`` (it takes
    that connection's place among the target's inputs). Its id is made when it is applied."""

    source: str
    target: str
    type: str
    params: tuple[tuple[str, Any], ...] = ()


class RemoveEdge(NamedTuple):
    """Remove the connection ``source → target``."""

    source: str
    target: str


Edit = Union[SetParam, InsertLayer, RemoveEdge]


class Fix(NamedTuple):
    """One way to fix a problem: what it does (``label``, e.g. "set padding to 1"), how its
    message words it (``phrase``, e.g. "padding 1"), and the edits, applied together."""

    label: str
    phrase: str
    edits: tuple[Edit, ...]


class Advice(NamedTuple):
    """How a message ends in advice, so it can be worded again with only the fixes that work:
    the text is ``head + sep + template.format(joiner.join(phrases))``, where the phrases are
    those of ``options`` kept (plain strings, advice that is not an edit, are always kept);
    without any, ``head`` alone, or ``head + sep + fallback``."""

    head: str
    options: tuple[Union[Fix, str], ...]
    template: str = "{}"
    joiner: str = " or "
    sep: str = "; "
    fallback: str = ""

    def render(self, fixes: "tuple[Fix, ...] | None" = None) -> str:
        """The message keeping only ``fixes`` among the options (None: all of them)."""
        phrases = [o if isinstance(o, str) else o.phrase for o in self.options
                   if isinstance(o, str) or fixes is None or o in fixes]
        if phrases:
            return self.head + self.sep + self.template.format(self.joiner.join(phrases))
        return self.head + self.sep + self.fallback if self.fallback else self.head


def advised(head: str, options: "list[Fix | str] | tuple[Fix | str, ...]", template: str = "{}",
            joiner: str = " or ", sep: str = "; ", fallback: str = "") -> tuple[str, Advice]:
    """A message's text with all of its advice, and the advice to word it again."""
    advice = Advice(head, tuple(options), template, joiner, sep, fallback)
    return advice.render(), advice


class Problem(NamedTuple):
    """One thing wrong with a node. ``text`` does not repeat the node id; ``str()`` prefixes it.
    (A named tuple: immutable and hashable, and made several times faster than a frozen
    dataclass; a broken 100,000-node design makes one for every node.)

    ``text`` gives every suggestion its rule made; ``advice`` (if any) holds them as fixes, not
    yet checked: core/fixes.py checks them on a copy of the design and words the message with
    only those that work (what the panels and the summary show)."""

    node_id: str
    severity: str  # ERROR or WARNING
    code: str  # stable machine-readable kind, e.g. "output-too-small"
    text: str
    advice: Advice | None = None

    def __str__(self) -> str:
        return f"{self.node_id}: {self.text}"

    @property
    def fixes(self) -> tuple[Fix, ...]:
        """The fixes the message suggests (unchecked)."""
        if self.advice is None:
            return ()
        return tuple(o for o in self.advice.options if not isinstance(o, str))


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
