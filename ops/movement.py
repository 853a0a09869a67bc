"""Shape rules of the data-movement ops: rearrange, rename, flatten, concat, split,
expand, embedding, pixel (un)shuffle and upsample.

They register in `rules.SHAPE_RULES` like the others; `rules` imports this
module so the table is complete whichever is imported first.
"""

from __future__ import annotations

import re

from archc.ir.graph import Op
from archc.ops.rules import _check_nonneg, axis_of, fail, per_axis, rule, spatial_axes
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, ParamSpec, TensorType, TupleType

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


@rule(Op.REARRANGE)
def _rearrange(ctx, ins, a):
    (x,) = ins
    pattern: str = a["pattern"]
    if pattern.count("->") != 1:
        raise fail("a rearrange pattern has one '->', as in 'b c h w -> b h w c'", "pattern", "arg")
    lhs_text, rhs_text = pattern.split("->")
    lhs, rhs = _pattern_side(lhs_text), _pattern_side(rhs_text)
    if len(lhs) != len(x.axes):
        raise fail(f"the pattern's left side has {len(lhs)} axes but the tensor {x} has {len(x.axes)}",
                   "pattern")
    known: dict[str, Size] = dict(a["sizes"] or {})
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
        extra = sorted(set(right) - set(left)) or sorted(set(left) - set(right))
        raise fail(f"the two sides of the pattern name different axes (look at '{extra[0]}')", "pattern")
    axes = []
    for gname, names in rhs:
        name = gname or "_".join(names)
        axes.append(Axis(name, S.prod(known[n] for n in names)))
    if len({ax.name for ax in axes}) != len(axes):
        raise fail("the pattern's right side names an axis twice", "pattern")
    return TensorType(tuple(axes), x.dtype), ()


@rule(Op.RENAME)
def _rename(ctx, ins, a):
    (x,) = ins
    mapping: dict[str, str] = {}
    for old, new in a["names"]:
        axis_of(x, old, "names")
        if old in mapping:
            raise fail(f"axis '{old}' is renamed twice", "names")
        mapping[old] = new
    # All at once, so rename(x, h -> w, w -> h) swaps the two names.
    out = TensorType(tuple(Axis(mapping.get(ax.name, ax.name), ax.size) for ax in x.axes), x.dtype)
    if len(set(out.names)) != len(out.names):
        raise fail(f"renaming gives two axes the same name: {out}", "names")
    return out, ()


@rule(Op.FLATTEN)
def _flatten(ctx, ins, a):
    (x,) = ins
    over = a["over"]
    idx = [axis_of(x, n, "over") for n in over]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise fail(f"flatten needs consecutive axes in order; {list(over)} are not in {x}", "over")
    name = a["name"] or over[0]
    merged = Axis(name, S.prod(x.axes[i].size for i in idx))
    axes = x.axes[:idx[0]] + (merged,) + x.axes[idx[-1] + 1:]
    if len({ax.name for ax in axes}) != len(axes):
        raise fail(f"the merged axis name '{name}' is already used in {x}", "name")
    return TensorType(axes, x.dtype), ()


@rule(Op.CONCAT)
def _concat(ctx, ins, a):
    axis = a["axis"]
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
    return first.with_size(axis, S.total(t.size(axis) for t in ins)), ()


@rule(Op.SPLIT)
def _split(ctx, ins, a):
    (x,) = ins
    axis = a["axis"]
    n = x.size(x.names[axis_of(x, axis, "axis")])
    if (a["parts"] is None) == (a["sizes"] is None):
        raise fail("split needs parts=N or sizes=[...]", None, "arg")
    if a["parts"] is not None:
        k = a["parts"]
        _check_nonneg((k,), "parts", 1)
        ctx.require_divisible(n, k, f"'{axis}' into {k} parts", "parts")
        each = S.floordiv(n, k) if S.is_concrete(n) else S.truediv(n, k)
        pieces = [each] * int(k)
    else:
        pieces = list(a["sizes"]) if isinstance(a["sizes"], (list, tuple)) else [a["sizes"]]
        ctx.require_equal(S.total(pieces), n, f"the sum of the split sizes and '{axis}'", "sizes")
    return TupleType(tuple(x.with_size(axis, p) for p in pieces)), ()


@rule(Op.EXPAND)
def _expand(ctx, ins, a):
    (x,) = ins
    out = x
    for name, size in (a["sizes"] or {}).items():
        if not out.has(name):
            out = TensorType((Axis(name, size),) + out.axes, out.dtype)
            continue
        cur = out.size(name)
        if cur != 1:
            ctx.require_equal(cur, size, f"axis '{name}' (only size-1 axes expand)", "sizes")
        out = out.with_size(name, size)
    return out, ()


@rule(Op.EMBEDDING)
def _embedding(ctx, ins, a):
    (x,) = ins
    if not x.dtype.startswith(("i", "u")):
        raise fail(f"embedding looks up integer ids, but the tensor is {x.dtype}", None, "type")
    if x.has(a["axis"]):
        raise fail(f"the ids already have an axis '{a['axis']}'; choose another with axis=", "axis")
    out = TensorType(x.axes + (Axis(a["axis"], a["dim"]),), "f32")
    return out, (ParamSpec("weight", (a["num"], a["dim"])),)


def _chw(x: TensorType, r: Size) -> tuple[Axis, Axis, Axis]:
    if len(x.axes) < 3:
        raise fail(f"pixel (un)shuffle needs [.., chan, h, w], got {x}")
    _check_nonneg((r,), "r", 1)
    c, h, w = x.axes[-3:]
    return c, h, w


@rule(Op.PIXEL_SHUFFLE)
def _pixel_shuffle(ctx, ins, a):
    (x,) = ins
    r = a["r"]
    c, h, w = _chw(x, r)
    rr = S.mul(r, r)
    ctx.require_divisible(c.size, rr, f"'{c.name}' by r²", "r")
    cs = S.floordiv(c.size, rr) if S.is_concrete(c.size) else S.truediv(c.size, rr)
    new = (Axis(c.name, cs), Axis(h.name, S.mul(h.size, r)), Axis(w.name, S.mul(w.size, r)))
    return TensorType(x.axes[:-3] + new, x.dtype), ()


@rule(Op.PIXEL_UNSHUFFLE)
def _pixel_unshuffle(ctx, ins, a):
    (x,) = ins
    r = a["r"]
    c, h, w = _chw(x, r)
    ctx.require_divisible(h.size, r, f"'{h.name}' by r", "r")
    ctx.require_divisible(w.size, r, f"'{w.name}' by r", "r")
    new = (Axis(c.name, S.mul(c.size, S.mul(r, r))), Axis(h.name, S.floordiv(h.size, r)),
           Axis(w.name, S.floordiv(w.size, r)))
    return TensorType(x.axes[:-3] + new, x.dtype), ()


@rule(Op.UPSAMPLE)
def _upsample(ctx, ins, a):
    (x,) = ins
    idx = spatial_axes(x, a["over"], 1)
    if (a["scale"] is None) == (a["size"] is None):
        raise fail("upsample needs scale= or size=", None, "arg")
    if a["mode"] == "bilinear" and len(idx) != 2:
        raise fail("bilinear upsampling acts on exactly two axes", "mode", "value")
    out = x
    if a["size"] is not None:
        for i, o in zip(idx, per_axis(a["size"], len(idx), "size")):
            out = out.with_size(x.axes[i].name, o)
    else:
        for i, f in zip(idx, per_axis(a["scale"], len(idx), "scale")):
            if isinstance(f, float):
                if not f.is_integer():
                    raise fail("scale must be a whole number", "scale", "value")
                f = int(f)
            out = out.with_size(x.axes[i].name, S.mul(x.axes[i].size, f))
    return out, ()
