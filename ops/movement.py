"""Data movement over named axes: rearrange, rename, flatten, concat, split, expand, pixel
(un)shuffle, upsample, and embedding lookups. None of them does arithmetic on values.

>>> import archc.ops
>>> _pattern_side("b tok=(h w) c")
[(None, ['b']), ('tok', ['h', 'w']), (None, ['c'])]
>>> Trait.VIEW in Op.RENAME.traits, Trait.VIEW in Op.CONCAT.traits
(True, False)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.elementwise import IDENTITY_LOWERING
from archc.ops.facets import Cost, Expr, Glyph, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering, Unsupported
from archc.ops.registry import FLOAT, Attrs, Op, OpDef, Trait, arg, define
from archc.ops.rules import axis_of, check_min, fail, per_axis, spatial_axes
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, ParamSpec, TensorType, TupleType, Type

AttrsT = TypeVar("AttrsT", bound=Attrs)
Result = tuple[Type, tuple[ParamSpec, ...], AttrsT]  # a shape rule's result, its attributes typed


_MOVE = frozenset({Trait.MOVEMENT})
_VIEW = frozenset({Trait.MOVEMENT, Trait.VIEW})

_TOKEN = re.compile(r"\s*(->|\.\.\.|[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[()=])")


def _pattern_side(text: str) -> list[tuple[str | None, list[str]]]:
    """'b tok=(h w) c' -> [(None, ['b']), ('tok', ['h', 'w']), (None, ['c'])]."""
    toks: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise fail(f"cannot read the pattern at '{text[pos:]}'", "pattern", "arg")
        toks.append(m.group(1))
        pos = m.end()
    out: list[tuple[str | None, list[str]]] = []
    i = 0
    while i < len(toks):
        name = None
        if i + 1 < len(toks) and toks[i + 1] == "=":
            name = toks[i]
            i += 2
            if i >= len(toks) or toks[i] != "(":
                raise fail("'name=' in a pattern must be followed by a group '( ... )'", "pattern", "arg")
        if toks[i] == "(":
            j = toks.index(")", i) if ")" in toks[i:] else -1
            if j < 0:
                raise fail("a '(' in the pattern is not closed", "pattern", "arg")
            out.append((name, toks[i + 1:j]))
            i = j + 1
        elif toks[i] in (")", "="):
            raise fail(f"unexpected '{toks[i]}' in the pattern", "pattern", "arg")
        else:
            out.append((None, [toks[i]]))
            i += 1
    return out


# ---- rearrange ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class RearrangeAttrs(Attrs):
    pattern: str = arg("str")
    sizes: dict[str, Size] | None = arg("sizes_kw", None)


def _rearrange_shape(ctx: ShapeCtx, ins: list[TensorType], a: RearrangeAttrs) -> Result[RearrangeAttrs]:
    (x,) = ins
    pattern: str = a.pattern
    if pattern.count("->") != 1:
        raise fail("a rearrange pattern has one '->', as in 'b c h w -> b h w c'", "pattern", "arg")
    lhs_text, rhs_text = pattern.split("->")
    lhs, rhs = _pattern_side(lhs_text), _pattern_side(rhs_text)
    if len(lhs) != len(x.axes):
        raise fail(f"the pattern's left side has {len(lhs)} axes but the tensor {x} has {len(x.axes)}",
                   "pattern")
    known: dict[str, Size] = dict(a.sizes or {})
    for (gname, names), ax in zip(lhs, x.axes):
        if len(names) == 1 and gname is None:
            if names[0] != ax.name:
                raise fail(f"the pattern names '{names[0]}' where the tensor {x} has '{ax.name}'",
                           "pattern")
            if names[0] in known:
                ctx.require_equal(known[names[0]], ax.size, f"axis '{ax.name}'")
            known[names[0]] = ax.size
            continue
        if gname is not None and gname != ax.name:  # `chan=(head dh)` names the axis it splits
            raise fail(f"the pattern names '{gname}' where the tensor {x} has '{ax.name}'", "pattern")
        unknown = [n for n in names if n not in known]
        if len(unknown) > 1:
            raise fail(f"give the size of all but one of ({' '.join(names)}), e.g. "
                       f"rearrange(x, \"...\", {unknown[0]} = 2)", "pattern")
        given = S.prod(known[n] for n in names if n in known)
        if unknown:
            ctx.require_divisible(ax.size, given, f"axis '{ax.name}' into ({' '.join(names)})", "pattern")
            known[unknown[0]] = S.floordiv(ax.size, given) if S.is_concrete(ax.size) and \
                S.is_concrete(given) else S.truediv(ax.size, given)
        else:
            ctx.require_equal(given, ax.size, f"axis '{ax.name}' as ({' '.join(names)})")
    left = [n for _, ns in lhs for n in ns]
    right = [n for _, ns in rhs for n in ns]
    if sorted(left) != sorted(right):
        twice = sorted({n for n in right if right.count(n) > 1} | {n for n in left if left.count(n) > 1})
        if twice:  # `c h -> c c h`: the same names on both sides, one of them twice
            raise fail(f"the pattern names '{twice[0]}' twice on one side", "pattern")
        extra = sorted(set(right) - set(left)) or sorted(set(left) - set(right))
        raise fail(f"the two sides of the pattern name different axes (look at '{extra[0]}')", "pattern")
    axes = []
    for gname, names in rhs:
        name = gname or "_".join(names)
        axes.append(Axis(name, S.prod(known[n] for n in names)))
    if len({ax.name for ax in axes}) != len(axes):
        raise fail("the pattern's right side names an axis twice", "pattern")
    return TensorType(tuple(axes), x.dtype), (), a


# ---- rename ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenameAttrs(Attrs):
    names: list[tuple[str, str]] = arg("renames")


def _rename_shape(ctx: ShapeCtx, ins: list[TensorType], a: RenameAttrs) -> Result[RenameAttrs]:
    (x,) = ins
    mapping: dict[str, str] = {}
    for old, new in a.names:
        axis_of(x, old, "names")
        if old in mapping:
            raise fail(f"axis '{old}' is renamed twice", "names")
        mapping[old] = new
    # All at once, so rename(x, h -> w, w -> h) swaps the two names.
    out = TensorType(tuple(Axis(mapping.get(ax.name, ax.name), ax.size) for ax in x.axes), x.dtype)
    if len(set(out.names)) != len(out.names):
        raise fail(f"renaming gives two axes the same name: {out}", "names")
    return out, (), a


# ---- flatten -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlattenAttrs(Attrs):
    over: tuple[str, ...] = arg("axes")
    name: str | None = arg("axis", None)


def _flatten_shape(ctx: ShapeCtx, ins: list[TensorType], a: FlattenAttrs) -> Result[FlattenAttrs]:
    (x,) = ins
    over = a.over
    idx = [axis_of(x, n, "over") for n in over]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise fail(f"flatten needs consecutive axes in order; {list(over)} are not in {x}", "over")
    name = a.name or over[0]
    merged = Axis(name, S.prod(x.axes[i].size for i in idx))
    axes = x.axes[:idx[0]] + (merged,) + x.axes[idx[-1] + 1:]
    if len({ax.name for ax in axes}) != len(axes):
        raise fail(f"the merged axis name '{name}' is already used in {x}", "name")
    return TensorType(axes, x.dtype), (), a


# ---- concat ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConcatAttrs(Attrs):
    axis: str = arg("axis")


def _concat_shape(ctx: ShapeCtx, ins: list[TensorType], a: ConcatAttrs) -> Result[ConcatAttrs]:
    axis = a.axis
    first = ins[0]
    for t in ins:
        axis_of(t, axis, "axis")
        if t.names != first.names:
            raise fail(f"concat needs the same axes in the same order: {first} vs {t}")
        if t.dtype != first.dtype:
            raise fail(f"concat of {first.dtype} and {t.dtype} tensors", None, "type")
        for ax in t.axes:
            if ax.name != axis:
                ctx.require_equal(first.size(ax.name), ax.size, f"axis '{ax.name}' of the joined tensors")
    return first.with_size(axis, S.total(t.size(axis) for t in ins)), (), a


# ---- split -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class SplitAttrs(Attrs):
    axis: str = arg("axis")
    parts: Size | None = arg("size", None)
    sizes: Any = arg("sizes", None)


def _split_shape(ctx: ShapeCtx, ins: list[TensorType], a: SplitAttrs) -> Result[SplitAttrs]:
    (x,) = ins
    axis = a.axis
    n = x.size(x.names[axis_of(x, axis, "axis")])
    if (a.parts is None) == (a.sizes is None):
        raise fail("split needs parts=N or sizes=[...]", None, "arg")
    if a.parts is not None:
        k = a.parts
        check_min((k,), "parts", 1)
        ctx.require_divisible(n, k, f"'{axis}' into {k} parts", "parts")
        if not S.is_concrete(k):  # a tuple has a number of items, not a size
            raise fail(f"parts is how many tensors split makes: a number, not the size {S.fmt(k)} that "
                       "depends on free sizes", "parts", "value")
        each = S.floordiv(n, k) if S.is_concrete(n) else S.truediv(n, k)
        pieces = [each] * int(k)
    else:
        pieces = list(a.sizes) if isinstance(a.sizes, (list, tuple)) else [a.sizes]
        ctx.require_equal(S.total(pieces), n, f"the sum of the split sizes and '{axis}'", "sizes")
    return TupleType(tuple(x.with_size(axis, p) for p in pieces)), (), a


# ---- expand ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExpandAttrs(Attrs):
    sizes: dict[str, Size] = arg("sizes_kw")


def _expand_shape(ctx: ShapeCtx, ins: list[TensorType], a: ExpandAttrs) -> Result[ExpandAttrs]:
    (x,) = ins
    out = x
    new: list[Axis] = []  # the axes x lacks: in front, in the order written
    for name, size in (a.sizes or {}).items():
        if not x.has(name):
            new.append(Axis(name, size))
            continue
        cur = out.size(name)
        if cur != 1:
            ctx.require_equal(cur, size, f"axis '{name}' (only size-1 axes expand)", "sizes")
        out = out.with_size(name, size)
    return TensorType(tuple(new) + out.axes, out.dtype), (), a


# ---- embedding ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmbeddingAttrs(Attrs):
    num: Size = arg("size")
    dim: Size = arg("size")
    axis: str = arg("axis", "chan")


def _embedding_shape(ctx: ShapeCtx, ins: list[TensorType], a: EmbeddingAttrs) -> Result[EmbeddingAttrs]:
    (x,) = ins
    if not x.dtype.startswith(("i", "u")):
        raise fail(f"embedding looks up integer ids, but the tensor is {x.dtype}", None, "type")
    if x.has(a.axis):
        raise fail(f"the ids already have an axis '{a['axis']}'; choose another with axis=", "axis")
    check_min((a.num,), "num", 1)  # a table of no rows, or of rows of no features, is no table
    check_min((a.dim,), "dim", 1)
    out = TensorType(x.axes + (Axis(a.axis, a.dim),), "f32")
    return out, (ParamSpec("weight", (a.num, a.dim)),), a


# ---- pixel_shuffle -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class PixelShuffleAttrs(Attrs):
    r: Size = arg("size")


def _chw(x: TensorType, r: Size) -> tuple[Axis, Axis, Axis]:
    if len(x.axes) < 3:
        raise fail(f"pixel (un)shuffle needs [.., chan, h, w], got {x}")
    check_min((r,), "r", 1)
    c, h, w = x.axes[-3:]
    return c, h, w


def _pixel_shuffle_shape(ctx: ShapeCtx, ins: list[TensorType], a: PixelShuffleAttrs) -> Result[PixelShuffleAttrs]:
    (x,) = ins
    r = a.r
    c, h, w = _chw(x, r)
    rr = S.mul(r, r)
    ctx.require_divisible(c.size, rr, f"'{c.name}' by r²", "r")
    cs = S.floordiv(c.size, rr) if S.is_concrete(c.size) else S.truediv(c.size, rr)
    new = (Axis(c.name, cs), Axis(h.name, S.mul(h.size, r)), Axis(w.name, S.mul(w.size, r)))
    return TensorType(x.axes[:-3] + new, x.dtype), (), a


# ---- pixel_unshuffle ---------------------------------------------------------------------------


def _pixel_unshuffle_shape(ctx: ShapeCtx, ins: list[TensorType], a: PixelShuffleAttrs) -> Result[PixelShuffleAttrs]:
    (x,) = ins
    r = a.r
    c, h, w = _chw(x, r)
    ctx.require_divisible(h.size, r, f"'{h.name}' by r", "r")
    ctx.require_divisible(w.size, r, f"'{w.name}' by r", "r")
    new = (Axis(c.name, S.mul(c.size, S.mul(r, r))), Axis(h.name, S.floordiv(h.size, r)),
           Axis(w.name, S.floordiv(w.size, r)))
    return TensorType(x.axes[:-3] + new, x.dtype), (), a


# ---- upsample ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class UpsampleAttrs(Attrs):
    scale: Any = arg("sizes", None)
    size: Any = arg("sizes", None)
    mode: str = arg("str", "nearest", ("nearest", "bilinear"))
    align_corners: bool = arg("bool", False)
    over: tuple[str, ...] | None = arg("axes", None)


def _upsample_shape(ctx: ShapeCtx, ins: list[TensorType], a: UpsampleAttrs) -> Result[UpsampleAttrs]:
    (x,) = ins
    idx = spatial_axes(x, a.over, 1)
    if (a.scale is None) == (a.size is None):
        raise fail("upsample needs scale= or size=", None, "arg")
    if a.mode == "bilinear" and len(idx) != 2:
        raise fail("bilinear upsampling acts on exactly two axes", "mode", "value")
    out = x
    if a.size is not None:
        for i, o in zip(idx, per_axis(a.size, len(idx), "size")):
            out = out.with_size(x.axes[i].name, o)
    else:
        for i, f in zip(idx, per_axis(a.scale, len(idx), "scale")):
            if isinstance(f, float):
                if not f.is_integer():
                    raise fail("scale must be a whole number", "scale", "value")
                f = int(f)
            out = out.with_size(x.axes[i].name, S.mul(x.axes[i].size, f))
    return out, (), a


def _upsample_cost(a: UpsampleAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    assert isinstance(out, TensorType)
    return Cost().add("elementwise", S.mul(8, out.numel())) if a.mode == "bilinear" else Cost()


# ---- PyTorch lowerings ------------------------------------------------------------------------------


def _rearrange_steps(a: RearrangeAttrs, ins: list[TensorType], ctx: LowerCtx) -> list[tuple[str, Any]]:
    """unflatten / permute / flatten steps that implement a rearrange pattern."""
    lhs_text, rhs_text = a.pattern.split("->")
    lhs, rhs = _pattern_side(lhs_text), _pattern_side(rhs_text)
    given = dict(a.sizes or {})
    steps: list[tuple[str, Any]] = []
    elementary: list[str] = []
    dim = 0
    for _, names in lhs:
        if len(names) == 1:
            elementary.append(names[0])
            dim += 1
            continue
        if not names:
            raise Unsupported("an empty group '()' in a rearrange pattern is not lowered yet")
        sizes = [ctx.size(given[n]) if n in given else "-1" for n in names]
        steps.append(("unflatten", (dim, sizes)))
        elementary.extend(names)
        dim += len(names)
    order = [n for _, names in rhs for n in names]
    perm = tuple(elementary.index(n) for n in order)
    if perm != tuple(range(len(perm))):
        steps.append(("permute", perm))
    dim = 0
    merges = []
    for _, names in rhs:
        if len(names) > 1:
            merges.append((dim, dim + len(names) - 1))
        dim += max(len(names), 1)
    for start, end in reversed(merges):
        steps.append(("flatten", (start, end)))
    return steps


def _rearrange_forward(a: RearrangeAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx,
                       args: list[Expr]) -> Expr:
    text = args[0].atom()
    for kind, step in _rearrange_steps(a, ins, ctx):
        if kind == "unflatten":
            text += f".unflatten({step[0]}, ({', '.join(step[1])}))"
        elif kind == "permute":
            swapped = [i for i, p in enumerate(step) if i != p]
            if len(swapped) == 2:
                text += f".transpose({swapped[0]}, {swapped[1]})"
            else:
                text += f".permute{T.lit(step)}"
        else:
            text += f".flatten({step[0]}, {step[1]})"
    return Expr(text)


def _rearrange_module(a: RearrangeAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    steps = _rearrange_steps(a, ins, ctx)
    if not steps:
        return "nn.Identity()"
    if len(steps) == 1 and steps[0][0] == "permute":
        ctx.helper("Permute")
        return f"Permute({T.lit(steps[0][1])})"
    if len(steps) == 1 and steps[0][0] == "flatten":
        return f"nn.Flatten({steps[0][1][0]}, {steps[0][1][1]})"
    if len(steps) == 1 and steps[0][0] == "unflatten" and all(s.lstrip("-").isdigit() for s in steps[0][1][1]):
        return f"nn.Unflatten({steps[0][1][0]}, ({', '.join(steps[0][1][1])},))"
    raise Unsupported(f"the rearrange {a.pattern!r} as a sequence step is not lowered yet "
                      "(write it as its own statement)")


def _flatten_dims(a: FlattenAttrs, ins: list[TensorType]) -> tuple[int, int]:
    dims = T.dims(ins[0], a.over)
    return dims[0], dims[-1]


def _flatten_module(a: FlattenAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return "nn.Flatten({}, {})".format(*_flatten_dims(a, ins))


def _flatten_forward(a: FlattenAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr("{}.flatten({}, {})".format(args[0].atom(), *_flatten_dims(a, ins)))


def _concat_forward(a: ConcatAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"torch.cat([{', '.join(x.text for x in args)}], dim={ins[0].index(a.axis)})")


def _split_forward(a: SplitAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    (x,) = ins
    assert isinstance(out, TupleType)
    d = x.index(a.axis)
    if a.parts is not None:
        return Expr(f"torch.chunk({args[0].text}, {ctx.const(a.parts, 'parts')}, dim={d})")
    texts: list[str | None] = []
    for t in out.items:
        try:
            texts.append(ctx.size(t.size(a.axis)))
        except Unsupported:
            texts.append(None)
    if texts.count(None) == 1:  # the one size with no run-time formula: what the others leave
        known = [t for t in texts if t is not None]
        texts[texts.index(None)] = f"{args[0].atom()}.shape[{d}]" + "".join(f" - {t}" for t in known)
    elif None in texts:
        raise Unsupported("split: more than one piece has a size that changes with the input")
    return Expr(f"torch.split({args[0].text}, [{', '.join(t or '' for t in texts)}], dim={d})")


def _expand_forward(a: ExpandAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    (x,) = ins
    assert isinstance(out, TensorType)
    new = len(out.names) - len(x.names)
    sizes = [ctx.size(out.axes[i].size) for i in range(new)]
    for i, ax in enumerate(x.axes):
        target = out.axes[new + i].size
        sizes.append("-1" if ax.size == target else ctx.size(target))
    return Expr(f"{args[0].atom()}.expand({', '.join(sizes)})")


def _embedding_module(a: EmbeddingAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return f"nn.Embedding({ctx.const(a.num, 'num_embeddings')}, {ctx.const(a.dim, 'dim')})"


def _shuffle_lowering(functional: str, cls: str) -> TorchLowering[PixelShuffleAttrs]:
    def module(a: PixelShuffleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
        return f"{cls}({ctx.const(a.r, 'r')})"

    def forward(a: PixelShuffleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        return Expr(f"{functional}({args[0].text}, {ctx.const(a.r, 'r')})")

    return TorchLowering(module=module, forward=forward)


def _upsample_moves(a: UpsampleAttrs, x: TensorType) -> tuple[list[int], T.Moved | None]:
    """The resampled axes, and how they move into torch's layout [batch, chan, *spatial] (as a pool's:
    the other axes first, the last of them as the channels; `T.Moved`), None where they are there."""
    idx = [x.index(n) for n in a.over] if a.over else list(range(2, len(x.names)))
    n = len(idx)
    if idx == list(range(len(x.names) - n, len(x.names))) and len(x.names) == n + 2:
        return idx, None
    others = tuple(i for i in range(len(x.names)) if i not in idx)
    return idx, T.Moved(others + tuple(idx), len(others) - 1)  # no other axis: batch -1, both added


def _upsample_kw(a: UpsampleAttrs, ins: list[TensorType], ctx: LowerCtx, runtime: bool) -> str:
    x = ins[0]
    n = len(_upsample_moves(a, x)[0])
    if a.size is not None:
        sizes = T.per(a.size, n)
        texts = [ctx.size(s) for s in sizes] if runtime else [str(ctx.const(s, "size")) for s in sizes]
        kw = f"size=({', '.join(texts)}{',' if n == 1 else ''})"
    else:
        # a scale that is a size (`scale = H`, a parameter of a generic class): read at run time in
        # forward, a constructor argument for nn.Upsample
        texts = [T.lit(float(s)) if isinstance(s, (int, float)) else ctx.size(s) if runtime
                 else str(ctx.const(s, "scale_factor")) for s in T.per(a.scale, n)]
        kw = f"scale_factor={texts[0] if len(set(texts)) == 1 else '(' + ', '.join(texts) + ')'}"
    kw += f", mode={a.mode!r}"
    if a.mode == "bilinear":
        kw += f", align_corners={a.align_corners!r}"
    return kw


def _upsample_module(a: UpsampleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    moved = _upsample_moves(a, ins[0])[1]
    if moved is None:
        return f"nn.Upsample({_upsample_kw(a, ins, ctx, False)})"
    ctx.helper("UpsampleAt")  # axes not in torch's layout: nn.Upsample's subclass that moves them there and back
    return f"UpsampleAt({_upsample_kw(a, ins, ctx, False)}{moved.kwargs()})"


def _upsample_forward(a: UpsampleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    moved = _upsample_moves(a, ins[0])[1]
    if moved is None:
        return Expr(f"F.interpolate({args[0].text}, {_upsample_kw(a, ins, ctx, True)})")
    ctx.helper("moved")  # axes not in torch's layout: moved there and back
    return Expr(f"moved(F.interpolate, {args[0].text}, {T.lit(moved.dims)}, {moved.batch}, "
                f"{_upsample_kw(a, ins, ctx, True)})")


# ---- what training keeps (saves rules) ---------------------------------------------------------------


def _upsample_saves(a: UpsampleAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Keeps nothing. Its result is torch's, moved back where the axes were moved (`Moved.saves`):
    channels-last from a channels-last input of 2 or 3 resampled axes."""
    x = ins[0]
    assert isinstance(out, TensorType)
    try:
        idx, moved = _upsample_moves(a, x)
    except Unsupported:  # not lowered
        return Saved()
    moves = moved or T.Moved(tuple(range(len(x.axes))), 1)
    return moves.saves(x, out, ctx, len(idx), len(idx) > 1)[1]


def _rearrange_saves(a: RearrangeAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Keeps nothing. Its output is a view of its input (unflatten, permute, flatten), except where a
    flatten merges axes that are not neighbours in memory: reshape then copies."""
    lhs_text, rhs_text = a.pattern.split("->")
    lhs, rhs = _pattern_side(lhs_text), _pattern_side(rhs_text)
    x, given = ins[0], dict(a.sizes or {})
    size: dict[str, Size | None] = {}
    for (_, names), ax in zip(lhs, x.axes):
        for n in names:
            size[n] = ax.size if len(names) == 1 else given.get(n)
    ones = {n for n, v in size.items() if _is_one(v)}
    groups = [names for _, names in rhs]
    known = ctx.layouts[0]
    if known is not None:
        order, loose, packed = known
        # an input axis split into several: its gap (a loose axis) is at its outermost part
        return Sv.relayout([n for i in order for n in lhs[i][1]], groups, ones,
                           {lhs[i][1][0] for i in loose if lhs[i][1]}, packed)
    # a layout not known (a broadcast): a merge of two axes longer than 1 copies
    if any(len([n for n in names if n not in ones]) > 1 for names in groups):
        return Saved()
    return Saved(view=0, contiguous=False)


def _is_one(n: Size | None) -> bool:
    return n is not None and S.is_concrete(n) and int(n) == 1


def _flatten_saves(a: FlattenAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """A view where the merged axes are neighbours in memory, in order (or at most one of them is longer
    than 1); otherwise reshape copies. Keeps nothing."""
    x = ins[0]
    first, last = _flatten_dims(a, ins)
    names = list(x.names)
    groups = [[n] for n in names[:first]] + [names[first:last + 1]] + [[n] for n in names[last + 1:]]
    ones = {ax.name for ax in x.axes if _is_one(ax.size)}
    known = Sv.layout(ctx, 0, names)
    if known is not None:
        mem, loose, packed = known
        return Sv.relayout(mem, groups, ones, loose, packed)
    if sum(n not in ones for n in names[first:last + 1]) <= 1:
        return Saved(view=0, contiguous=False)
    return Saved()


def _split_saves(a: SplitAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Views of its input, each a part of it along the split axis (Sv.part: contiguous pieces when no
    axis of size above 1 lies outside the split axis); pieces laid out differently (one of size 1 among
    longer ones) leave the layout unknown."""
    pieces = [Sv.part(ins[0], t, ctx) for t in out.items] if isinstance(out, TupleType) else []
    if pieces and all(p == pieces[0] for p in pieces):
        return pieces[0]
    return Saved(view=0, contiguous=False)


def _expand_saves(a: ExpandAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """A view with stride 0 along the broadcast axes (never contiguous unless nothing grew)."""
    return Saved(view=0, contiguous=ctx.contiguous[0] and _same_numel(ins[0], out))


def _same_numel(x: TensorType, out: Type) -> bool:
    if not isinstance(out, TensorType):
        return False
    n, m = x.numel(), out.numel()
    return S.is_concrete(n) and S.is_concrete(m) and int(n) == int(m)


def _embedding_saves(a: EmbeddingAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """The ids, to scatter the gradient into the table's rows."""
    return Saved(inputs=(0,))


def _keeps_nothing(a: Attrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Concat, pixel (un)shuffle and upsampling: their backward needs only sizes."""
    return Saved()


# ---- definitions -------------------------------------------------------------------------------------

define(OpDef(
    key="REARRANGE", name="rearrange", attrs=RearrangeAttrs, tensors=1, traits=_VIEW,
    shape=_rearrange_shape, cost=C.free, torch=TorchLowering(module=_rearrange_module, forward=_rearrange_forward),
    glyph=Glyph("bar", "⇄", G.SHAPE),
    doc="einops-style pattern over axis names: 'batch chan h w -> batch tok=(h w) chan'", saves=_rearrange_saves))

define(OpDef(
    key="RENAME", name="rename", attrs=RenameAttrs, tensors=1, traits=_VIEW,
    shape=_rename_shape, cost=C.free, torch=IDENTITY_LOWERING, glyph=Glyph("bar", "rename", G.SHAPE),
    doc="renames axes: rename(x, tok -> seq)", saves=Sv.view))

define(OpDef(
    key="FLATTEN", name="flatten", attrs=FlattenAttrs, tensors=1, traits=_VIEW,
    shape=_flatten_shape, cost=C.free, torch=TorchLowering(module=_flatten_module, forward=_flatten_forward),
    glyph=Glyph("bar", "flatten", G.SHAPE), doc="merges consecutive axes into one", saves=_flatten_saves))

define(OpDef(
    key="CONCAT", name="concat", attrs=ConcatAttrs, tensors=(1, 64), traits=_MOVE,
    shape=_concat_shape, cost=C.free, torch=TorchLowering(forward=_concat_forward),
    glyph=Glyph("bar", "concat", G.SHAPE), doc="joins tensors along one axis", saves=_keeps_nothing))

define(OpDef(
    key="SPLIT", name="split", attrs=SplitAttrs, tensors=1, traits=_VIEW,
    shape=_split_shape, cost=C.free, torch=TorchLowering(forward=_split_forward),
    glyph=Glyph("bar", "split", G.SHAPE),
    doc="splits along one axis into `parts` equal pieces or pieces of `sizes`", saves=_split_saves))

define(OpDef(
    key="EXPAND", name="expand", attrs=ExpandAttrs, tensors=1, traits=_VIEW,
    shape=_expand_shape, cost=C.free, torch=TorchLowering(forward=_expand_forward),
    glyph=Glyph("bar", "expand", G.SHAPE), doc="broadcasts size-1 axes: expand(t, batch = n)", saves=_expand_saves))

define(OpDef(
    key="EMBEDDING", name="embedding", attrs=EmbeddingAttrs, tensors=1,
    traits=frozenset({Trait.MOVEMENT, Trait.PARAMETERS}),
    shape=_embedding_shape, cost=C.free, torch=TorchLowering(module=_embedding_module),
    glyph=Glyph("embed", "E", G.LEARNED), doc="looks up integer ids; adds an axis of size `dim`",
    dtypes=frozenset({"int"}), saves=_embedding_saves))

define(OpDef(
    key="PIXEL_SHUFFLE", name="pixel_shuffle", attrs=PixelShuffleAttrs, tensors=1, traits=_MOVE,
    shape=_pixel_shuffle_shape, cost=C.free, torch=_shuffle_lowering("F.pixel_shuffle", "nn.PixelShuffle"),
    glyph=Glyph("bar", "shuffle", G.SHAPE), doc="[.., C·r², H, W] -> [.., C, H·r, W·r]", saves=_keeps_nothing))

define(OpDef(
    key="PIXEL_UNSHUFFLE", name="pixel_unshuffle", attrs=PixelShuffleAttrs, tensors=1, traits=_MOVE,
    shape=_pixel_unshuffle_shape, cost=C.free, torch=_shuffle_lowering("F.pixel_unshuffle", "nn.PixelUnshuffle"),
    glyph=Glyph("bar", "unshuffle", G.SHAPE), doc="[.., C, H·r, W·r] -> [.., C·r², H, W]", saves=_keeps_nothing))

define(OpDef(
    key="UPSAMPLE", name="upsample", attrs=UpsampleAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT}),
    shape=_upsample_shape, cost=_upsample_cost, torch=TorchLowering(module=_upsample_module, forward=_upsample_forward),
    glyph=Glyph("bar", "↑", G.SHAPE), doc="nearest or bilinear resampling of the axes after the first two",
    dtypes=FLOAT, saves=_upsample_saves))

__all__ = ["Op"]
