"""The saves rules ops share: what PyTorch's autograd keeps for backward (the `saves` facet).

A rule says what the op's backward reads, for the lowering archc generates, as
`torch.autograd.graph.saved_tensors_hooks` sees it on CPU (tests/test_memory.py
checks every example against it): kept inputs and outputs by storage, the tensors
made only to be kept (`Kept`), and whether the output is a view. It runs only
where the op's output requires grad (analysis/memory.py decides that); `ctx.grads`
says which inputs do, for the rules that keep one operand for the other's gradient
(a product keeps `b` for `a`'s gradient). The table of rules is in docs/costs.md.

>>> from archc.shapes.types import Axis, TensorType
>>> t = TensorType((Axis("n", 4),), "f32")
>>> class Ctx: grads, contiguous = (True, False), (True, True)
>>> operands(None, [t, t], t, Ctx()).inputs, keeps_input(None, [t], t, Ctx()).inputs
((1,), (0,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.ops.facets import Kept, SaveCtx, Saved
from archc.shapes import sizes as S
from archc.shapes.types import DTYPES, TensorType, Type


def nothing(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its backward needs only sizes (add, concat, mean, a scalar scale, padding, ...)."""
    return Saved()


def view(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """The output is the input or a view of it: laid out as it (identity, rename; unflatten: dense when it
    is), or part of it (a split piece): see `part`; `slice` calls `part` with its step.

    >>> from archc.shapes.types import Axis, TensorType
    >>> class Ctx: contiguous, layouts = (True,), (((0, 1), frozenset(), True),)
    >>> x = TensorType((Axis("b", 2), Axis("h", 8)), "f32")
    >>> part_of = lambda b, h: TensorType((Axis("b", b), Axis("h", h)), "f32")
    >>> view(None, [x], part_of(1, 8), Ctx()).contiguous, view(None, [x], part_of(2, 4), Ctx()).loose
    (True, frozenset({1}))
    """
    x = ins[0]
    if not isinstance(out, TensorType) or S.equal(x.numel(), out.numel()) is True:
        known = ctx.layouts[0]
        if isinstance(out, TensorType) and len(out.axes) == len(x.axes) and known is not None:
            return laid_out(known[0], known[1], view=0, packed=known[2])
        return Saved(view=0, contiguous=ctx.contiguous[0])
    return part(x, out, ctx)


def part(x: TensorType, out: TensorType, ctx: SaveCtx, step: Any = 1) -> Saved:
    """A view of part of input 0, `x`, narrowed (every `step`-th position) along the axes whose size
    differs in `out` or that `out` drops: a narrowed axis no longer fills the axis outside it in memory
    (it becomes `loose`), and with a step the axis inside it no longer fills it. Dense only when no axis
    longer than 1 lies outside the narrowed one. The layout of an input archc does not know stays so."""
    known = ctx.layouts[0]
    if known is None:
        return Saved(view=0, contiguous=False)
    order, loose, packed = known
    names = x.names
    sizes = {ax.name: ax.size for ax in out.axes}
    gaps, strided = set(loose), set()
    for k, ax in enumerate(x.axes):
        m = sizes.get(ax.name)
        if m is not None and S.equal(m, ax.size) is True or one(ax.size):
            continue
        kept = m is not None and not one(m)
        if not (kept and S.equal(S.mul(m, step), ax.size) is True):
            gaps.add(k)
        if kept and not (S.is_concrete(step) and int(step) == 1):
            strided.add(k)
            gaps.update(order[order.index(k) + 1:][:1])

    def gone(k: int) -> bool:
        return names[k] not in sizes or one(sizes[names[k]])

    live = [k for k in order if not gone(k)]
    final: set[int] = set()
    for k in gaps:  # a gap at an axis that goes moves to the next axis inside it that stays
        final.update([j for j in order[order.index(k):] if not gone(j)][:1])
    final.discard(live[0] if live else -1)
    if live:  # the innermost axis that stays is no longer packed with a step, or where an axis inside it went
        inside = order[order.index(live[-1]) + 1:]
        packed = packed and live[-1] not in strided and all(one(x.axes[j].size) for j in inside)
    where = {n: j for j, n in enumerate(out.names)}
    return laid_out(tuple(where[names[k]] for k in order if names[k] in where),
                    frozenset(where[names[k]] for k in final), view=0, packed=packed)


def laid_out(order: tuple[int, ...], loose: frozenset[int], view: int | None = None,
             packed: bool = True) -> Saved:
    """A layout as `Saved` gives it: contiguous, dense in `order`, or dense in it but for `loose` axes
    (and not `packed`)."""
    if not loose and packed and order == tuple(range(len(order))):
        return Saved(view=view)
    return Saved(view=view, contiguous=False, order=order, loose=loose, packed=packed)


def one(n: Any) -> bool:
    """Whether a size is 1 (a free size counts as more)."""
    return S.is_concrete(n) and int(n) == 1


def keeps_input(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its backward reads its input (gelu, log, conv for the weight's gradient, ...). An activation
    torch runs in place (`relu6_`) keeps a copy of the input instead: the same bytes."""
    return Saved(inputs=(0,))


def keeps_output(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its backward reads its output (relu, sigmoid, tanh, exp, sqrt, softmax)."""
    return Saved(output=True)


def keeps_input_and_output(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Both (amax: the gradient goes to the elements equal to the result)."""
    return Saved(inputs=(0,), output=True)


def operands(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """A product keeps each operand another operand's gradient needs (mul: `a` for `b`, `b` for `a`)."""
    keep = tuple(i for i in range(len(ins)) if any(g for j, g in enumerate(ctx.grads) if j != i))
    return Saved(inputs=keep)


def all_inputs(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Every tensor input (minimum, maximum: where they are equal, where each one wins)."""
    return Saved(inputs=tuple(range(len(ins))))


def stats_dtype(dtype: str) -> str:
    """The dtype of a norm's saved statistics: fp32 for a half-precision input (the accumulate type)."""
    return "f32" if DTYPES[dtype].is_float and DTYPES[dtype].bytes < 4 else dtype


def copy_of(t: TensorType) -> Kept:
    """A contiguous copy of `t` (what `reshape` makes of a permuted tensor before a matmul keeps it)."""
    return Kept(t.numel(), t.dtype)


def moves_data(t: TensorType, order: Sequence[int]) -> bool:
    """Whether putting `t`'s axes in `order` (a permutation) changes the order of its elements in memory:
    axes of size 1 move freely; a free size counts as more than 1.

    >>> from archc.shapes.types import Axis, TensorType
    >>> t = TensorType((Axis("b", 1), Axis("l", 16), Axis("c", 8)), "f32")
    >>> moves_data(t, (1, 0, 2)), moves_data(t, (0, 2, 1))
    (False, True)
    """
    kept = [i for i in order if not (S.is_concrete(t.axes[i].size) and int(t.axes[i].size) == 1)]
    return kept != sorted(kept)


def to_last(t: TensorType, axis: str) -> tuple[int, ...]:
    """The permutation that moves `axis` last (torch.movedim(x, i, -1))."""
    i = t.index(axis)
    return tuple(j for j in range(len(t.axes)) if j != i) + (i,)


def memory_order(ctx: SaveCtx, i: int, ndim: int) -> tuple[int, ...] | None:
    """Input i's axes in memory order, outermost first, where it is dense: in order when it is contiguous,
    its `order` when it is dense in another one; None otherwise (a broadcast, a slice: see `layout`)."""
    if ctx.contiguous[i]:
        return tuple(range(ndim))
    return ctx.orders[i]


def layout(ctx: SaveCtx, i: int, names: Sequence[str]) -> tuple[list[str], set[str], bool] | None:
    """Input i's axis names (`names`) in memory order, outermost first, those of its loose axes (that do
    not fill the axis outside them: a slice's, a split's), and whether it is packed (`Saved`); None
    where archc does not know its layout."""
    known = ctx.layouts[i]
    if known is None:
        return None
    return [names[k] for k in known[0]], {names[k] for k in known[1]}, known[2]


def relayout(in_memory: Sequence[str], groups: Sequence[Sequence[str]], ones: set[str],
             loose: set[str] | frozenset[str] = frozenset(), packed: bool = True) -> Saved:
    """What reshaping does to a tensor whose elementary axes lie in memory in the order `in_memory`,
    densely but for the `loose` ones (each apart from the axis outside it), into output axes that each
    merge the elementary axes of one of `groups` (in output order): a view, laid out in some order,
    unless a group merges axes that are not neighbours in memory or merges across a gap (then reshape
    copies: a new, contiguous storage). Axes in `ones` have size 1 and go anywhere.

    >>> relayout(["b", "h", "t", "d"], [["b"], ["t"], ["h", "d"]], set()).view  # copies
    >>> relayout(["b", "t", "h", "d"], [["b"], ["h"], ["t"], ["d"]], set()).order
    (0, 2, 1, 3)
    >>> relayout(["b", "h", "w"], [["b"], ["h", "w"]], set(), {"h"}).loose  # h narrowed: (h w) is a view
    frozenset({1})
    >>> relayout(["b", "h", "w"], [["b", "h"], ["w"]], set(), {"h"}).view  # (b h) copies
    """
    live = [m for m in in_memory if m not in ones]
    pos = {n: k for k, n in enumerate(live)}
    gaps: set[int] = set()
    for n in loose:  # a gap at an axis of size 1 is one at the next axis inside it
        inner = [m for m in in_memory[list(in_memory).index(n):] if m not in ones] if n in in_memory else []
        gaps.update(pos[m] for m in inner[:1])
    gaps.discard(0)
    keys: list[tuple[float, int]] = []
    apart: set[int] = set()
    previous = -1.0
    for j, group in enumerate(groups):
        idx = [pos[n] for n in group if n in pos]
        if idx and (idx != list(range(idx[0], idx[0] + len(idx))) or any(k in gaps for k in idx[1:])):
            return Saved()
        if idx and idx[0] in gaps:
            apart.add(j)
        previous = float(idx[0]) if idx else previous + 1e-3
        keys.append((previous, j))
    return laid_out(tuple(j for _, j in sorted(keys)), frozenset(apart), view=0, packed=packed)
