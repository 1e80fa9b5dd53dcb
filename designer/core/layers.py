"""Per-layer inference: output shape, parameter count, mult-adds and receptive field of one node
from its resolved parameters and its inputs. Pure functions; the arithmetic is PyTorch's.

Every rule also records its worked arithmetic (``derivations``) so that the inspector and the
messages can show *why* a number is what it is: ``(32 − 5 + 2·2)/1 + 1 = 32``.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any, Callable, NamedTuple, Sequence

from designer.core.catalog import SPATIAL_ONLY, LayerType
from designer.core.problems import (ERROR, WARNING, Advice, Fix, InsertLayer, Problem, RemoveEdge,
                                    SetParam, advised, name_list, num, shape_text)

Shape = tuple[int, ...]


class AxisField(NamedTuple):
    """Receptive field along one axis, in input pixels (padding counts: positions may be
    negative or past the end).

    ``size`` and ``start`` are output unit 0's window: the smallest window holding every input
    position that can affect it, over all paths, and its centre. ``jump`` is the distance
    between neighbouring units' windows. Paths of different jumps can meet (Add or Concat of a
    strided and an unstrided branch): then no single jump describes the windows, and ``paths``
    keeps one ``(jump, first, last)`` per distinct jump, unit 0's window along the paths of that
    jump (the paths of one jump move together, so the hull of their windows is exact); unit i's
    window is the hull of ``[first + i·jump, last + i·jump]`` over them (see :meth:`window`),
    and ``jump`` is the largest. ``paths`` is empty when every path has the same jump."""

    size: float  # window extent
    jump: float  # distance between neighbouring output units' windows (the largest, see above)
    start: float  # centre of output unit 0's window
    paths: tuple[tuple[Any, Any, Any], ...] = ()  # (jump, first, last) per jump, if several

    def groups(self) -> tuple[tuple[Any, Any, Any], ...]:
        """``(jump, first, last)`` per distinct jump of the paths (one when they all agree)."""
        if self.paths:
            return self.paths
        half = (self.size - 1) / 2
        return ((self.jump, self.start - half, self.start + half),)

    def window(self, index: int) -> tuple[float, float]:
        """First and last input position of the window of unit ``index`` (padding included)."""
        if not self.paths:
            centre, half = self.start + index * self.jump, (self.size - 1) / 2
            return centre - half, centre + half
        return (min(first + index * jump for jump, first, _ in self.paths),
                max(last + index * jump for jump, _, last in self.paths))


#: at most this many distinct jumps are kept per axis; beyond, the smallest jumps are folded into
#: the next one with a window that holds theirs for every unit of the map (a larger field, never
#: a smaller one), so the work per layer stays bounded
MAX_PATH_JUMPS = 8


def _axis_from_groups(groups: Sequence[tuple[Any, Any, Any]], units: int | None = None
                      ) -> AxisField:
    """The field of paths given as ``(jump, first, last)``: equal jumps joined by their hull,
    at most :data:`MAX_PATH_JUMPS` kept (``units``: the map's size along the axis, to fold
    the rest), unit 0's hull as size and start, the largest jump as jump."""
    hulls: dict[Any, tuple[Any, Any]] = {}
    for jump, first, last in groups:
        had = hulls.get(jump)
        hulls[jump] = (first, last) if had is None else (min(had[0], first), max(had[1], last))
    items = sorted(hulls.items())
    while len(items) > MAX_PATH_JUMPS:
        # fold the smallest jump a into the next b, over units 0 … units − 1: since a < b,
        # first + i·b ≤ first_a + i·a needs first ≤ first_a − (units − 1)(b − a); the last
        # positions already grow faster along b
        (a, (first_a, last_a)), (b, (first_b, last_b)) = items[0], items[1]
        reach = (max(units or 1, 1) - 1) * (b - a)
        items[:2] = [(b, (min(first_b, first_a - reach), max(last_b, last_a)))]
    if len(items) == 1:
        jump, (first, last) = items[0]
        return AxisField(last - first + 1, jump, (first + last) / 2)
    first = min(f for _, (f, _) in items)
    last = max(l for _, (_, l) in items)
    return AxisField(last - first + 1, items[-1][0], (first + last) / 2,
                     tuple((jump, f, l) for jump, (f, l) in items))


class ReceptiveField(NamedTuple):
    rows: AxisField
    cols: AxisField

    @property
    def size(self) -> tuple[int, int]:
        return (_whole(self.rows.size, up=True), _whole(self.cols.size, up=True))

    @property
    def jump(self) -> tuple[float, float]:
        return (_whole(self.rows.jump), _whole(self.cols.jump))

    @property
    def start(self) -> tuple[float, float]:
        return (float(self.rows.start), float(self.cols.start))

    def as_dict(self) -> dict[str, list]:
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}


INPUT_FIELD = ReceptiveField(AxisField(1, 1, 0.0), AxisField(1, 1, 0.0))


def pair_value(pair: tuple[int, int]) -> str:
    """A parameter pair as the user would write it: ``2`` or ``[2, 3]``."""
    return str(pair[0]) if pair[0] == pair[1] else f"[{pair[0]}, {pair[1]}]"


def _whole(x: float, up: bool = False) -> Any:
    if float(x).is_integer():
        return int(x)
    return math.ceil(x) if up else float(x)


class Upstream(NamedTuple):
    """What a node knows about one of its inputs."""

    source: str
    shape: Shape | None
    field: ReceptiveField | None


class Inferred:
    """One layer rule at work: its node, parameters and inputs, and the results the rule writes
    (shape, parameters, mult-adds, field, problems, worked arithmetic). ``problems`` and
    ``derivations`` are tuples, empty in the common case (no list is made for them on every
    edit); one object per rule run keeps the per-edit cost down on large designs."""

    __slots__ = ("node_id", "layer", "p", "inputs", "explain",
                 "shape", "params", "macs", "field", "fc_equivalent", "problems", "derivations")

    def __init__(self, node_id: str, layer: LayerType, p: dict[str, Any],
                 inputs: Sequence[Upstream], explain: bool) -> None:
        self.node_id, self.layer, self.p, self.inputs = node_id, layer, p, inputs
        self.explain = explain  # record worked arithmetic (costly strings) only when asked
        self.shape: Shape | None = None
        self.params = 0
        self.macs = 0
        self.field: ReceptiveField | None = None
        self.fc_equivalent: int | None = None  # Conv2d: weights a fully connected layer would need
        self.problems: tuple[Problem, ...] = ()
        self.derivations: tuple[tuple[str, str], ...] = ()

    def error(self, code: str, text: str, advice: Advice | None = None) -> None:
        self.problems += (Problem(self.node_id, ERROR, code, text, advice),)

    def warn(self, code: str, text: str, advice: Advice | None = None) -> None:
        self.problems += (Problem(self.node_id, WARNING, code, text, advice),)

    def set_fix(self, name: str, value: Any, phrase: str) -> Fix:
        """A fix setting one of this node's parameters."""
        return set_fix(self.node_id, name, value, phrase)

    def derive(self, label: str, text: str) -> None:
        self.derivations += ((label, text),)


#: the codes of problems that layer rules find (from the shapes reaching a node); the others
#: come from the graph and the parameters themselves
RULE_CODES = frozenset({"flat-input", "groups", "same-stride", "output-too-small",
                        "fractional-output", "pool-padding", "spatial-input", "add-shapes",
                        "concat-sizes", "too-large"})


def param_text(value: Any) -> str:
    """A parameter value as the design file writes it: ``1``, ``[1, 2]``, ``true``, ``"same"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def set_fix(node_id: str, name: str, value: Any, phrase: str) -> Fix:
    return Fix(f"set {name} to {param_text(value)}", phrase, (SetParam(node_id, name, value),))


def pair_setting(current: Any, axes: dict[int, int]) -> int | tuple[int, int]:
    """A pair parameter with some axes changed, as short as it can be written: ``2`` for
    ``(2, 2)``. ``current`` may be a word (``"valid"``: no padding)."""
    pair = list(current) if isinstance(current, tuple) else [0, 0]
    for axis, value in axes.items():
        pair[axis] = value
    return pair[0] if pair[0] == pair[1] else (pair[0], pair[1])


# --------------------------------------------------------------------------- window arithmetic

_AXIS_WORDS = {0: ("height", "row", "rows"), 1: ("width", "column", "columns")}


def _formula(n: int, k: int, s: int, p_lo: int, p_hi: int, d: int) -> str:
    """The lecture's ``(N − F + 2P)/S + 1`` with numbers, generalised to dilation and uneven padding."""
    pad = f"2·{p_lo}" if p_lo == p_hi else f"{p_lo} + {p_hi}"
    if d == 1:
        return f"({n} − {k} + {pad})/{s} + 1"
    return f"({n} + {pad} − {d}·({k} − 1) − 1)/{s} + 1"


def _value_text(v: Fraction) -> str:
    if v.denominator == 1:
        text = num(v)
    else:  # two decimals, exactly, whatever the size; more where two would show a whole number
        # (4/2147483647 + 1 is 1.000000002, not 1): a stride is below 2^31, so ten suffice
        places = 2
        while round(abs(v) * 10**places) % 10**places == 0 and places < 12:
            places += 1
        scaled = round(abs(v) * 10**places)
        sign = "-" if v < 0 else ""
        text = f"{sign}{scaled // 10**places:,}.{scaled % 10**places:0{places}d}".rstrip("0").rstrip(".")
    return text.replace("-", "−")


class _Axis(NamedTuple):
    n: int
    k: int
    s: int
    p_lo: int
    p_hi: int
    d: int


# ---------------------------------------------------------------- divisors, in bounded time
#
# Fix-it hints name divisors (a stride that divides the span, groups that divide both channel
# counts). Sizes reach 2^31 − 1 and beyond, so counting up to them is out of the question: the
# numbers are factored (trial division by the primes below 1,000, then Miller–Rabin and Pollard's
# rho with a fixed budget) and the divisors built from the factors.

_SMALL_PRIMES = tuple(p for p in range(2, 1000) if all(p % q for q in range(2, math.isqrt(p) + 1)))
_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)  # exact below 3.3·10^24
_RHO_BUDGET = 1 << 15  # iterations of Pollard's rho per number, at most


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in _SMALL_PRIMES[:13]:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while not d & 1:  # at most log2(n) steps
        d >>= 1
        r += 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho(n: int) -> int | None:
    """A proper factor of the odd composite ``n`` (Pollard–Brent), or None if the budget ran out."""
    spent = 0
    for c in range(1, 20):
        y, m, g, r, q = 2, 64, 1, 1, 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
            spent += r
            if spent > _RHO_BUDGET:
                return None
        if g == n:  # the batch overshot: step back one at a time
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g
    return None


@functools.lru_cache(maxsize=512)
def _factors(n: int) -> tuple[tuple[int, int], ...]:
    """``n``'s factorisation as (factor, power) pairs. Every factor is prime, except that a part
    the budget could not split is kept whole: its divisors are then missed, never invented."""
    found: dict[int, int] = {}
    for p in _SMALL_PRIMES:
        if p * p > n:
            break
        while n % p == 0:
            found[p] = found.get(p, 0) + 1
            n //= p
    stack = [n] if n > 1 else []
    while stack:  # at most log2(n) parts
        m = stack.pop()
        if m < 1_000_000 or _is_prime(m):  # no prime below 1,000 divides m: m < 1000² is prime
            found[m] = found.get(m, 0) + 1
            continue
        f = _rho(m)
        if f is None:
            found[m] = found.get(m, 0) + 1
        else:
            stack += [f, m // f]
    return tuple(sorted(found.items()))


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` ≥ 1 in increasing order (see :func:`_factors` for the rare miss),
    in time bounded whatever ``n`` is (a number below 2^64 has at most 103,680 divisors)."""
    out = [1]
    for p, e in _factors(n):
        out = [d * p ** i for d in out for i in range(e + 1)]
    out.sort()
    return out


def largest_divisor_below(n: int, bound: int) -> int | None:
    """The largest divisor of ``n`` ≥ 1 that is below ``bound`` (None if ``bound`` ≤ 1)."""
    if bound <= 1:
        return None
    if n < bound:
        return n
    best = 1
    for d in divisors(n):
        if d >= bound:
            break
        best = d
    return best


def _fix_for_fraction(a: _Axis, pool: bool, symmetric_padding: bool) -> str:
    """The advice :func:`_fraction_options` gives, as words."""
    options = [phrase for _, _, phrase in _fraction_options(a, pool, symmetric_padding)]
    return "try " + " or ".join(options) if options else FRACTION_FALLBACK


FRACTION_FALLBACK = "try another kernel size, stride or padding"


def _fraction_options(a: _Axis, pool: bool, symmetric_padding: bool
                      ) -> list[tuple[str, Any, str]]:
    """Suggest the nearest padding and stride that make the output size whole, as
    ``(parameter, value on this axis, words)``: the smallest padding above the current one
    (within one stride of it, and allowed) with ``(n + 2p − eff) ≡ 0 (mod s)``, the largest
    stride below the current one that divides the span, and for pooling ceil mode. Both numbers
    are worked out directly (a congruence, a factorisation), never by counting up to the
    stride."""
    eff = a.d * (a.k - 1) + 1
    options: list[tuple[str, Any, str]] = []
    if symmetric_padding:
        limit = a.k // 2 if pool else eff - 1
        # 2p ≡ eff − n (mod s): solvable when gcd(2, s) divides eff − n
        g = math.gcd(2, a.s)
        r = eff - a.n
        if r % g == 0:
            m = a.s // g
            p0 = (r // g) * pow(2 // g, -1, m) % m if m > 1 else 0
            first = a.p_lo + 1
            p = first + (p0 - first) % m  # the first solution above the current padding
            if p <= limit:
                options.append(("padding", p, f"padding {p}"))
    span = a.n + a.p_lo + a.p_hi - eff
    s = largest_divisor_below(span, a.s) if span > 0 else None
    if s is not None:
        options.append(("stride", s, f"stride {s}"))
    if pool:
        options.append(("ceil_mode", True, "ceil_mode true"))
    return options


def _axis_size(a: _Axis, ceil_mode: bool) -> int:
    """One axis's output size, PyTorch's rule (what :func:`window_sizes` works out)."""
    span = a.n + a.p_lo + a.p_hi - a.d * (a.k - 1) - 1
    if ceil_mode:
        size = (span + a.s - 1) // a.s + 1
        if size >= 1 and (size - 1) * a.s >= a.n + a.p_lo:
            size -= 1
        return size
    return span // a.s + 1


def _ordinal(n: int) -> str:
    """``2nd``, ``3rd``, ``11th``, ``21st``, with thousands separators."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _subsampling_note(axis: int, a: _Axis, eff: int, lost: int, same: bool) -> str:
    """What a window narrower than its stride does, for the worked arithmetic: it reads some
    rows and skips the others on purpose, the last ones included (no warning for that)."""
    _, one, many = _AXIS_WORDS[axis]
    if same:
        one, many = "row and column", "rows and columns"
    if eff == 1:
        what = (f"it keeps every {_ordinal(a.s)} {one} and skips the others on purpose "
                f"(subsampling, as ResNet's strided 1×1 shortcuts do)")
    else:
        gap = a.s - eff
        what = (f"its windows of {eff:,} {many} are {a.s:,} apart, so {gap:,} "
                f"{one if gap == 1 else many} between them {'is' if gap == 1 else 'are'} "
                f"skipped on purpose (subsampling)")
    last = f"the last {one}" if lost == 1 else f"the last {lost:,} {many}"
    verb = "is" if lost == 1 and not same else "are"
    return f": {what}; {last} {verb} skipped the same way"


def _plain_window_size(n: int, k: int, s: int, p_lo: int, p_hi: int, d: int,
                       ceil_mode: bool) -> int | None:
    """One axis of :func:`window_sizes` when there is nothing to say about it: the output size,
    or None if it is below 1 or input rows go uncovered (the full path then explains why)."""
    eff = d * (k - 1) + 1
    span = n + p_lo + p_hi - eff
    if ceil_mode:
        size = (span + s - 1) // s + 1
        if size >= 1 and (size - 1) * s >= n + p_lo:
            size -= 1
    else:
        lost = span % s - p_hi
        if lost > 0 and lost > s - eff:  # rows left over that no subsampling explains
            return None
        size = span // s + 1
    return size if size >= 1 else None


def window_sizes(ctx: Inferred, shape: Shape, k: tuple[int, int], s: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]], d: tuple[int, int],
                 ceil_mode: bool, pool: bool, symmetric_padding: bool) -> tuple[int, int] | None:
    """Output height and width of a sliding window (convolution or pooling), PyTorch's rules,
    with errors, warnings and worked arithmetic recorded on ``ctx``. None if an axis is below 1."""
    if not ctx.explain:  # the common case on every edit: no text unless something is wrong
        rows = _plain_window_size(shape[1], k[0], s[0], pads[0][0], pads[0][1], d[0], ceil_mode)
        cols = _plain_window_size(shape[2], k[1], s[1], pads[1][0], pads[1][1], d[1], ceil_mode)
        if rows is not None and cols is not None:
            return (rows, cols)
    axes = [_Axis(shape[1 + i], k[i], s[i], pads[i][0], pads[i][1], d[i]) for i in (0, 1)]
    same = axes[0] == axes[1]
    out: list[int] = []
    for i, a in enumerate(axes[:1] if same else axes):
        eff = a.d * (a.k - 1) + 1
        span = a.n + a.p_lo + a.p_hi - eff
        rest = span % a.s
        note = ""
        if ceil_mode:  # PyTorch: round up, but a last window must start inside the input
            size = (span + a.s - 1) // a.s + 1
            if size >= 1 and (size - 1) * a.s >= a.n + a.p_lo:
                size -= 1
                note = (f" → {size} (ceil mode, but PyTorch drops a last window that would start "
                        f"in the padding)")
            elif rest:
                note = f" → {size} (ceil mode rounds up)"
        else:
            size = span // a.s + 1
            if rest:
                note = f" → {size}" if rest > a.p_hi else f" → {size} (only padding is left over)"
        lost = 0 if ceil_mode else rest - a.p_hi
        gap = a.s - eff  # rows skipped between neighbouring windows (when positive)
        if 0 < lost <= gap:
            # a subsampling layer (a strided 1×1 convolution, a pool with stride above its
            # kernel): it skips rows between its windows on purpose, and the rows left at the end
            # are no more than those skipped everywhere else; nothing to warn about
            if ctx.explain:
                note = f" → {size}{_subsampling_note(i, a, eff, lost, same)}"
            lost = 0
        if size >= 1 and lost <= 0 and not ctx.explain:
            out.append(size)  # the common case: nothing to say, no text to build
            continue
        word, one, many = _AXIS_WORDS[i]
        if same:
            word, one, many = "height and width", "row and column", "rows and columns"
        text = (f"{_formula(a.n, a.k, a.s, a.p_lo, a.p_hi, a.d)} = "
                f"{_value_text(Fraction(span, a.s) + 1)}")
        if size < 1:
            window = f"{eff} (kernel {a.k} with dilation {a.d})" if a.d > 1 else f"{a.k}"
            need = -(-(eff - a.n) // 2)
            # the fixes change every axis that is too small (the message names the first)
            small = [j for j, b in enumerate(axes) if _axis_size(b, ceil_mode) < 1]
            options: list[Fix | str] = []
            if a.d == 1:
                kernel = pair_setting(k, {j: axes[j].n + axes[j].p_lo + axes[j].p_hi
                                          for j in small})
                options.append(ctx.set_fix("kernel_size", kernel,
                                           f"a kernel of at most {a.n + a.p_lo + a.p_hi}"))
            else:
                options.append("a smaller kernel or dilation")
            if not pool or need <= a.k // 2:
                wanted = {j: -(-(axes[j].d * (axes[j].k - 1) + 1 - axes[j].n) // 2)
                          for j in small}
                current = (pads[0][0], pads[1][0]) if symmetric_padding else None
                if current is not None:
                    options.append(ctx.set_fix("padding", pair_setting(current, wanted),
                                               f"padding of at least {need}"))
                else:
                    options.append(f"padding of at least {need}")
            ctx.error("output-too-small", *advised(
                f"output {word} {text} is below 1: the window of {window} does not fit in the "
                f"{a.n} input {many} plus padding", options, "use {}"))
            return None
        if lost > 0:
            what = f"the last {one}" if lost == 1 else f"the last {lost} {many}"
            verb = "is" if lost == 1 and not same else "are"
            fixed_axes = (0, 1) if same else (i,)
            fixes = []
            for name, value, phrase in _fraction_options(a, pool, symmetric_padding):
                if name != "ceil_mode":
                    current = (pads[0][0], pads[1][0]) if name == "padding" else s
                    value = pair_setting(current, {j: value for j in fixed_axes})
                fixes.append(ctx.set_fix(name, value, phrase))
            ctx.warn("fractional-output", *advised(
                f"output {word} {text} is not a whole number: {what} of the input {verb} "
                f"never covered (PyTorch floors this to {size})", fixes, "try {}",
                fallback=FRACTION_FALLBACK))
        if ctx.explain:
            ctx.derive(f"output {word}", text + note)
        out.append(size)
    return (out[0], out[0]) if same else (out[0], out[1])


def _window_field(f: ReceptiveField, k: tuple[int, int], s: tuple[int, int],
                  p_lo: tuple[int, int], d: tuple[int, int]) -> ReceptiveField:
    """A sliding window (kernel k, stride s, padding p, dilation d) on a field: output unit u
    reads input units u·s − p … u·s − p + eff − 1, so each path's window grows by (eff − 1)
    jumps, moves p jumps back, and its jump is multiplied by s."""
    axes = []
    for i, a in enumerate(f):
        eff = d[i] * (k[i] - 1) + 1
        if a.paths:
            p, si = p_lo[i], s[i]
            axes.append(_axis_from_groups([(j * si, first - p * j, last + (eff - 1 - p) * j)
                                           for j, first, last in a.paths]))
            continue
        axes.append(AxisField(a.size + (eff - 1) * a.jump, a.jump * s[i],
                              a.start + ((eff - 1) / 2 - p_lo[i]) * a.jump))
    return ReceptiveField(*axes)


def merge_fields(fields: Sequence[ReceptiveField | None],
                 hw: tuple[int, int] | None = None) -> ReceptiveField | None:
    """The field of a merge (Add, Concat): every path of every input. Paths with equal jumps
    join into the hull of their windows; paths with different jumps are kept apart (see
    :class:`AxisField`), since extending every window by the largest jump is wrong for units
    past the first. ``hw``: the merged map's height and width (only needed when more than
    :data:`MAX_PATH_JUMPS` jumps meet)."""
    if not fields or None in fields:
        return None
    first = fields[0]
    if all(f == first for f in fields):
        return first  # every path sees the same window (e.g. two branches of equal depth)
    axes = []
    for i in (0, 1):
        a = first[i]
        jump, single = a.jump, not a.paths
        half = (a.size - 1) / 2
        lo, hi = a.start - half, a.start + half
        for f in fields[1:]:  # one jump for all (the common case): the hull of unit 0's windows
            a = f[i]
            if a.paths or a.jump != jump:
                single = False
                break
            half = (a.size - 1) / 2
            if a.start - half < lo:
                lo = a.start - half
            if a.start + half > hi:
                hi = a.start + half
        if single:
            axes.append(AxisField(hi - lo + 1, jump, (lo + hi) / 2))
        else:
            axes.append(_axis_from_groups([g for f in fields for g in f[i].groups()],
                                          hw[i] if hw is not None else None))
    return ReceptiveField(*axes)


def _global_field(f: ReceptiveField, shape: Shape) -> ReceptiveField:
    """Every output unit sees every input unit (LayerNorm over a whole map)."""
    axes = []
    for i, a in enumerate(f):
        if a.paths:
            n = shape[1 + i]
            axes.append(_axis_from_groups([(0, first, last + (n - 1) * j)
                                           for j, first, last in a.paths]))
            continue
        extent = (shape[1 + i] - 1) * a.jump
        axes.append(AxisField(a.size + extent, 0, a.start + extent / 2))
    return ReceptiveField(*axes)


# --------------------------------------------------------------------------- rules


def _spatial_input(ctx: Inferred) -> Shape | None:
    shape = ctx.inputs[0].shape
    if len(shape) != 3:
        ctx.error("flat-input",
                  f"{ctx.layer.name} works on image-shaped input [C, H, W], but its input from "
                  f"{ctx.inputs[0].source} is flat {shape_text(shape)}; convolution, pooling and "
                  f"BatchNorm2d must come before Flatten and Linear")
        return None
    return shape


def _input(ctx: Inferred) -> None:
    p = ctx.p
    ctx.shape = (p["channels"], p["height"], p["width"])
    ctx.field = INPUT_FIELD


def _conv(ctx: Inferred) -> None:
    shape = _spatial_input(ctx)
    if shape is None:
        return
    p = ctx.p
    c, k, g = shape[0], p["out_channels"], p["groups"]
    kh, kw = p["kernel_size"]
    d, s = p["dilation"], p["stride"]
    ok = True
    if c % g or k % g:
        common = divisors(math.gcd(c, k))  # the common divisors of c and k
        ctx.error("groups", *advised(
            f"groups {g} must divide both the input channels ({c}) and out_channels ({k}): "
            f"{c}/{g} = {num(Fraction(c, g))}, {k}/{g} = {num(Fraction(k, g))}",
            [ctx.set_fix("groups", x, str(x)) for x in common[-6:]], "try groups {}", ", "))
        ok = False
    padding = p["padding"]
    if padding == "same":
        if s != (1, 1):
            fix = tuple(d[i] * (p["kernel_size"][i] - 1) // 2 for i in (0, 1))
            ctx.error("same-stride", *advised(
                f'padding "same" needs stride 1 (PyTorch refuses it for a strided '
                f"convolution), but stride is {pair_value(s)}",
                [ctx.set_fix("padding", pair_setting(fix, {}), f"padding {pair_value(fix)} instead"),
                 ctx.set_fix("stride", 1, "stride 1")], "use {}", ", or "))
            ok = False
        totals = [d[i] * (p["kernel_size"][i] - 1) for i in (0, 1)]
        pads = tuple((t // 2, t - t // 2) for t in totals)
        symmetric = False
    else:
        pad = (0, 0) if padding == "valid" else padding
        pads = ((pad[0], pad[0]), (pad[1], pad[1]))
        symmetric = True
    if not ok:
        return
    hw = window_sizes(ctx, shape, p["kernel_size"], s, pads, d, False, False, symmetric)
    per_filter = kh * kw * (c // g)
    bias = k if p["bias"] else 0
    ctx.params = k * per_filter + bias
    if ctx.explain:
        cg = f"{c}/{g}" if g > 1 else f"{c}"
        formula = f"{k}·({kh}·{kw}·{cg} + 1)" if bias else f"{k}·{kh}·{kw}·{cg}"
        ctx.derive("parameters", f"{formula} = {num(ctx.params)}")
    if hw is None:
        return
    ctx.shape = (k, hw[0], hw[1])
    ctx.macs = ctx.params * hw[0] * hw[1]
    if ctx.explain:
        ctx.derive("mult-adds", f"{num(ctx.params)} · {hw[0]}·{hw[1]} = {num(ctx.macs)}")
    n_in, n_out = shape[0] * shape[1] * shape[2], k * hw[0] * hw[1]
    ctx.fc_equivalent = n_in * n_out
    if ctx.explain:
        ctx.derive("fully connected equivalent",
                   f"{num(n_in)} × {num(n_out)} = {num(n_in * n_out)} weights "
                   f"(vs {num(ctx.params)} here)")
    if ctx.inputs[0].field is not None:
        ctx.field = _window_field(ctx.inputs[0].field, p["kernel_size"], s,
                                      (pads[0][0], pads[1][0]), d)


def _pool(ctx: Inferred) -> None:
    shape = _spatial_input(ctx)
    if shape is None:
        return
    p = ctx.p
    k, s, pad = p["kernel_size"], p["stride"], p["padding"]
    d = p.get("dilation", (1, 1))
    for i in (0, 1):
        if pad[i] > k[i] // 2:
            allowed = pair_setting(pad, {j: min(pad[j], k[j] // 2) for j in (0, 1)})
            ctx.error("pool-padding", *advised(
                f"padding {pad[i]} is more than half the kernel size {k[i]} "
                f"(at most {k[i] // 2}): windows at the border would hold only padding, "
                f"so PyTorch refuses this",
                [ctx.set_fix("padding", allowed, f"padding {k[i] // 2} or less")], "use {}"))
            return
    hw = window_sizes(ctx, shape, k, s, ((pad[0], pad[0]), (pad[1], pad[1])), d,
                      p["ceil_mode"], True, True)
    if hw is None:
        return
    ctx.shape = (shape[0], hw[0], hw[1])
    if ctx.inputs[0].field is not None:
        ctx.field = _window_field(ctx.inputs[0].field, k, s, pad, d)


def adaptive_windows(n: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one axis: ``[start, end)`` per output index."""
    return [((i * n) // out, -(-((i + 1) * n) // out)) for i in range(out)]


def adaptive_window_sizes(n: int, out: int) -> tuple[int, int]:
    """Smallest and largest window of :func:`adaptive_windows` without listing them: window i
    spans ceil((r + n) / out) with r = i·n mod out, and those remainders are the multiples of
    gcd(n, out) below out."""
    g = math.gcd(n, out)
    return -(-n // out), -(-(out - g + n) // out)


def _adaptive(ctx: Inferred) -> None:
    shape = _spatial_input(ctx)
    if shape is None:
        return
    oh, ow = ctx.p["output_size"]
    ctx.shape = (shape[0], oh, ow)
    axes = []
    f = ctx.inputs[0].field
    for i, (n, o) in enumerate(((shape[1], oh), (shape[2], ow))):
        smallest, largest = adaptive_window_sizes(n, o)
        if ctx.explain:
            word, many = ("height", "width")[i], _AXIS_WORDS[i][2]
            if n % o == 0:
                ctx.derive(f"output {word}", f"{o}: each window averages {n}/{o} = {n // o} {many}")
            else:
                ctx.derive(f"output {word}",
                           f"{o}: windows of {smallest} to {largest} {many}, "
                           f"starting every {n}/{o} = {num(Fraction(n, o))}")
        if f is not None:
            a = f[i]
            # neighbouring units: the centres of windows 0 and 1 (windows may be uneven)
            second = Fraction((n // o) + -(-(2 * n) // o), 2) if o > 1 else Fraction(n)
            step = second - Fraction(smallest, 2) if o > 1 else Fraction(n)
            if a.paths:  # as below, path by path: the largest window, centred on window 0's
                axes.append(_axis_from_groups(
                    [(j * step, first - (largest - smallest) * j / 2,
                      last + (smallest + largest - 2) * j / 2) for j, first, last in a.paths]))
                continue
            axes.append(AxisField(a.size + (largest - 1) * a.jump, a.jump * step,
                                  a.start + (smallest - 1) / 2 * a.jump))
    if f is not None:
        ctx.field = ReceptiveField(*axes)


def _batchnorm(ctx: Inferred) -> None:
    shape = _spatial_input(ctx)
    if shape is None:
        return
    ctx.shape = shape
    ctx.field = ctx.inputs[0].field
    if ctx.p["affine"]:
        ctx.params = 2 * shape[0]
        if ctx.explain:
            ctx.derive("parameters", f"2·{shape[0]} = {num(ctx.params)} (scale and shift per channel)")
    ctx.macs = ctx.params


def _layernorm(ctx: Inferred) -> None:
    shape = ctx.inputs[0].shape
    ctx.shape = shape
    if ctx.p["elementwise_affine"]:
        n = math.prod(shape)
        ctx.params = 2 * n
        if ctx.explain:
            dims = "·".join(str(s) for s in shape)
            ctx.derive("parameters", f"2·({dims}) = {num(ctx.params)} (scale and shift per element)")
    ctx.macs = ctx.params
    f = ctx.inputs[0].field
    if f is not None and len(shape) == 3:
        ctx.field = _global_field(f, shape)


def _linear(ctx: Inferred) -> None:
    shape = ctx.inputs[0].shape
    out = ctx.p["out_features"]
    if len(shape) != 1:
        flat = math.prod(shape)
        source = ctx.inputs[0].source
        n_params = out * (flat + 1) if ctx.p["bias"] else out * flat
        fix = Fix(f"insert a Flatten between {source} and {ctx.node_id}",
                  f"insert a Flatten before it (that gives [{flat}], so this layer would have "
                  f"{num(n_params)} parameters)",
                  (InsertLayer(source, ctx.node_id, "Flatten"),))
        ctx.error("spatial-input", *advised(
            f"Linear needs a flat input [F], but its input from {source} is {shape_text(shape)}",
            [fix]))
        return
    f_in = shape[0]
    ctx.shape = (out,)
    ctx.params = out * f_in + (out if ctx.p["bias"] else 0)
    formula = f"{out}·({f_in} + 1)" if ctx.p["bias"] else f"{out}·{f_in}"
    if ctx.explain:
        ctx.derive("parameters", f"{formula} = {num(ctx.params)}")
    ctx.macs = ctx.params


def _flatten(ctx: Inferred) -> None:
    shape = ctx.inputs[0].shape
    n = math.prod(shape)
    ctx.shape = (n,)
    if len(shape) > 1:
        if ctx.explain:
            ctx.derive("output size", f"{'·'.join(str(s) for s in shape)} = {num(n)}")


def _same_shape(ctx: Inferred) -> None:
    ctx.shape = ctx.inputs[0].shape
    ctx.field = ctx.inputs[0].field


def _from(ups: Sequence[Upstream]) -> str:
    return ", ".join(f"{shape_text(u.shape)} from {u.source}" for u in ups)


def _add(ctx: Inferred) -> None:
    shapes = [u.shape for u in ctx.inputs]
    first = shapes[0]
    if shapes.count(first) != len(shapes):
        head = f"Add needs inputs of equal shape, but got {_from(ctx.inputs)}"
        if not all(len(s) == 3 for s in shapes):
            ctx.error("add-shapes", head)
            return
        fix = _projection_fix(ctx)
        if len({s[1:] for s in shapes}) == 1:
            options: list[Fix | str] = ["Concat to stack them"]
            if fix is not None:
                options.append(fix._replace(phrase="a 1×1 Conv2d to change one's channels"))
            ctx.error("add-shapes", *advised(head + "; their channel counts differ", options,
                                             "use {}", ", or ", ": "))
        else:
            words = "match the sizes first (a strided 1×1 Conv2d on the shortcut, as ResNet does)"
            ctx.error("add-shapes", *advised(
                head, [fix._replace(phrase=words)] if fix is not None else [words],
                fallback="match the sizes first"))
        return
    ctx.shape = first
    ctx.field = merge_fields([u.field for u in ctx.inputs], first[1:]) if len(first) == 3 else None


def _projection_fix(ctx: Inferred) -> Fix | None:
    """ResNet's projection shortcut for an Add of unequal image shapes: the inputs are matched
    to the one with the smallest map (the most channels among those), each other input through
    a new 1×1 Conv2d with that many channels and the stride that shrinks its map to that size.
    None if some input's map can't be shrunk to it that way."""
    shapes = [u.shape for u in ctx.inputs]
    target = min(shapes, key=lambda s: (s[1] * s[2], -s[0]))
    edits = []
    for u in ctx.inputs:
        c, h, w = u.shape
        if u.shape == target:
            continue
        stride = []
        for n, want in ((h, target[1]), (w, target[2])):
            fits = [s for s in (n // want, -(-n // want)) if s >= 1 and (n - 1) // s + 1 == want]
            if not fits:
                return None
            stride.append(fits[0])
        params: tuple[tuple[str, Any], ...] = (("out_channels", target[0]), ("kernel_size", 1))
        if stride != [1, 1]:
            params += (("stride", pair_setting((stride[0], stride[1]), {})),)
        edits.append(InsertLayer(u.source, ctx.node_id, "Conv2d", params))
    if not edits:
        return None
    sources = name_list([e.source for e in edits])
    return Fix(f"insert a 1×1 Conv2d to {shape_text(target)} after {sources}", "",
               tuple(edits))


def _concat(ctx: Inferred) -> None:
    shapes = [u.shape for u in ctx.inputs]
    ranks = {len(s) for s in shapes}
    if ranks == {1}:
        ctx.shape = (sum(s[0] for s in shapes),)
    elif ranks == {3}:
        if len({s[1:] for s in shapes}) > 1:
            ctx.error("concat-sizes",
                      f"Concat needs inputs of equal height and width, but got {_from(ctx.inputs)}; "
                      f"change padding, stride or pooling so the maps match")
            return
        ctx.shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        ctx.field = merge_fields([u.field for u in ctx.inputs], shapes[0][1:])
    else:
        ctx.error("concat-sizes",
                  f"Concat can't join image-shaped and flat inputs: {_from(ctx.inputs)}")
        return
    if ctx.explain:
        ctx.derive("output channels" if len(shapes[0]) == 3 else "output size",
                   " + ".join(str(s[0]) for s in shapes) + f" = {ctx.shape[0]}")


RULES: dict[str, Callable[[Inferred], None]] = {
    "Input": _input, "Conv2d": _conv, "MaxPool2d": _pool, "AvgPool2d": _pool,
    "AdaptiveAvgPool2d": _adaptive, "BatchNorm2d": _batchnorm, "LayerNorm": _layernorm,
    "Linear": _linear, "Flatten": _flatten, "Add": _add, "Concat": _concat,
    **{name: _same_shape for name in ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "ReLU6",
                                      "SiLU", "Hardswish", "Hardsigmoid", "Softmax", "Dropout",
                                      "Identity")},
}


#: layers whose output is their input's shape and field, with no parameters and nothing that can
#: be wrong (callers on a hot path may skip the rule for them)
PASS_THROUGH = frozenset(name for name, rule in RULES.items() if rule is _same_shape)


def infer_layer(node_id: str, layer: LayerType, params: dict[str, Any],
                inputs: Sequence[Upstream], explain: bool = True) -> Inferred:
    """Apply a layer's rule. ``inputs`` must already have the right count and known shapes.
    With ``explain`` false the worked arithmetic (``derivations``) is left out, which is faster;
    errors and warnings are complete either way."""
    ctx = Inferred(node_id, layer, params, inputs, explain)
    try:
        RULES[layer.name](ctx)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, ValueError) and "digits" not in str(exc):
            raise
        # sizes beyond what floating point (or printing) can hold: say so, don't crash
        out = Inferred(node_id, layer, params, inputs, explain)
        out.problems = (Problem(node_id, ERROR, "too-large",
                                "its sizes are too large to compute; use smaller sizes"),)
        return out
    return ctx


#: a fix removes at most this many connections at once
MAX_EDGES_REMOVED = 50


def check_input_count(node_id: str, layer: LayerType, sources: Sequence[str]) -> Problem | None:
    """An error if the node has the wrong number of incoming edges."""
    n = len(sources)
    lo, hi = layer.min_inputs, layer.max_inputs
    if lo <= n and (hi is None or n <= hi):
        return None
    names = name_list(list(sources))
    if hi == 0:
        head = f"Input takes no inputs, but it has {n} (from {names})"
        if n > MAX_EDGES_REMOVED:
            text = head + "; remove those connections"
        else:
            fix = Fix(f"remove the connection{'s' if n > 1 else ''} from {names}",
                      "remove those connections" if n > 1 else "remove that connection",
                      tuple(RemoveEdge(s, node_id) for s in sources))
            return Problem(node_id, ERROR, "input-count", *advised(head, [fix]))
    elif hi is None:
        have = f"only {n} (from {names})" if n else "none"
        text = f"{layer.name} needs two or more inputs to merge, but it has {have}"
    elif n == 0:
        text = f"{layer.name} has no input; connect the layer that feeds it"
    else:
        text = (f"{layer.name} takes exactly one input, but it has {n} (from {names}); "
                f"merge them first with Add or Concat")
    return Problem(node_id, ERROR, "input-count", text)


def needs_spatial(type_name: str) -> bool:
    return type_name in SPATIAL_ONLY
