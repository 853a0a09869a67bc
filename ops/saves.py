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
    """The output is the input or a view of it, laid out as it (identity, rename, unflatten), or a view
    of part of it (a slice): dense only when no axis longer than 1 comes before the one it narrows (and,
    with a step, that axis is left with one position); else a layout archc does not know.

    >>> from archc.shapes.types import Axis, TensorType
    >>> class Ctx: contiguous = (True,)
    >>> x = TensorType((Axis("b", 2), Axis("h", 8)), "f32")
    >>> part = lambda b, h: TensorType((Axis("b", b), Axis("h", h)), "f32")
    >>> view(None, [x], part(1, 8), Ctx()).contiguous, view(None, [x], part(2, 4), Ctx()).contiguous
    (True, False)
    """
    return Saved(view=0, contiguous=ctx.contiguous[0] and _dense_part(a, ins[0], out))


def _dense_part(a: Any, x: TensorType, out: Type) -> bool:
    """Whether a view `out` of the contiguous `x`, the same elements or a part of them along one axis
    (the one whose size differs or that is gone), is contiguous too."""
    if not isinstance(out, TensorType) or S.equal(x.numel(), out.numel()) is True:
        return True
    sizes = {ax.name: ax.size for ax in out.axes}
    for i, ax in enumerate(x.axes):
        if sizes.get(ax.name) is not None and S.equal(sizes[ax.name], ax.size) is True:
            continue
        outer = all(one(b.size) for b in x.axes[:i])
        step = getattr(a, "step", 1)
        strided = not (S.is_concrete(step) and int(step) == 1) and not one(sizes.get(ax.name, 1)) \
            and not all(one(b.size) for b in x.axes[i + 1:])
        return outer and not strided
    return True


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
    """Input i's axes in memory order, outermost first: in order when it is contiguous, its `order` when
    it is dense in another one, None when its layout is not known (a broadcast or a slice)."""
    if ctx.contiguous[i]:
        return tuple(range(ndim))
    return ctx.orders[i]


def relayout(in_memory: Sequence[str], groups: Sequence[Sequence[str]], ones: set[str]) -> Saved:
    """What reshaping does to a dense tensor whose elementary axes lie in memory in the order `in_memory`,
    into output axes that each merge the elementary axes of one of `groups` (in output order): a view,
    dense in some order, unless a group merges axes that are not neighbours in memory (then reshape
    copies: a new, contiguous storage). Axes in `ones` have size 1 and go anywhere.

    >>> relayout(["b", "h", "t", "d"], [["b"], ["t"], ["h", "d"]], set()).view  # copies
    >>> relayout(["b", "t", "h", "d"], [["b"], ["h"], ["t"], ["d"]], set()).order
    (0, 2, 1, 3)
    """
    pos = {n: k for k, n in enumerate(m for m in in_memory if m not in ones)}
    keys: list[tuple[float, int]] = []
    previous = -1.0
    for j, group in enumerate(groups):
        idx = [pos[n] for n in group if n in pos]
        if idx and idx != list(range(idx[0], idx[0] + len(idx))):
            return Saved()
        previous = float(idx[0]) if idx else previous + 1e-3
        keys.append((previous, j))
    order = tuple(j for _, j in sorted(keys))
    if order == tuple(range(len(groups))):
        return Saved(view=0)
    return Saved(view=0, contiguous=False, order=order)
