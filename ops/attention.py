"""Contractions over named axes: `einsum`, scaled dot-product `attention`, and `multihead_attention`.

>>> import archc.ops
>>> Op.ATTENTION.glyph.kind, Trait.ATTENTION in Op.MHA.traits
('attention', True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Cost, Expr, Glyph, Kept, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering, Unsupported
from archc.ops.registry import FLOAT, FLOATING, Attrs, Op, OpDef, Trait, arg, define
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, ParamSpec, TensorType, Type

# ---- einsum -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class EinsumAttrs(Attrs):
    spec: str | None = arg("str", None)
    over: tuple[str, ...] | None = arg("axes", None)


def _einsum_shape(ctx: ShapeCtx, ins: list[TensorType], a: EinsumAttrs
                  ) -> tuple[Type, tuple[ParamSpec, ...], EinsumAttrs]:
    spec, over = a.spec, a.over
    if spec is None:
        if len(ins) != 2 or over is None:
            raise R.fail("einsum needs a spec string, or two tensors and over=[axes]", "spec", "arg")
        left, right = ins
        for name in over:
            R.axis_of(left, name, "over")
            R.axis_of(right, name, "over")
        out_names = [n for n in left.names if n not in over]
        out_names += [n for n in right.names if n not in over and n not in out_names]
    else:
        if "->" not in spec:
            raise R.fail("an einsum spec needs '->', as in 'a b, b c -> a c'", "spec", "arg")
        lhs, rhs = spec.split("->", 1)
        operands = [p.split() for p in lhs.split(",")]
        out_names = rhs.split()
        if len(operands) != len(ins):
            raise R.fail(f"the spec names {len(operands)} operands but {len(ins)} tensors are given",
                         "spec", "arg")
        for j, (names, t) in enumerate(zip(operands, ins)):
            if tuple(names) != t.names:
                raise R.fail(f"operand {j + 1} of the spec is [{', '.join(names)}] but the tensor is {t}",
                             "spec")
    if len({t.dtype for t in ins}) > 1:  # torch.einsum does not promote (c64 with f32 fails when run)
        raise R.fail("the operands must have one dtype, as torch.einsum does not convert them: "
                     + ", ".join(str(t) for t in ins), None, "type")
    known: dict[str, Size] = {}
    for t in ins:
        for ax in t.axes:
            if ax.name in known:
                ctx.require_equal(known[ax.name], ax.size, f"axis '{ax.name}' across einsum operands")
            else:
                known[ax.name] = ax.size
    for n in out_names:
        if n not in known:
            raise R.fail(f"output axis '{n}' is not an axis of any operand", "spec")
    if len(set(out_names)) != len(out_names):
        raise R.fail("an output axis appears twice", "spec")
    return TensorType(tuple(Axis(n, known[n]) for n in out_names), ins[0].dtype), (), a


def _einsum_cost(a: EinsumAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    assert isinstance(out, TensorType)
    if len(ins) == 1:
        return Cost().add("elementwise", ins[0].numel())
    every: dict[str, Size] = {}
    for t in ins:
        for ax in t.axes:
            every.setdefault(ax.name, ax.size)
    contracted = [n for n in every if not out.has(n)]
    if not contracted:
        return Cost().add("elementwise", S.mul(out.numel(), len(ins) - 1))
    return Cost().add("matmul", S.prod(every.values()))


def _einsum_forward(a: EinsumAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    assert isinstance(out, TensorType)
    letters: dict[str, str] = {}
    for t in list(ins) + [out]:
        for name in t.names:
            if name not in letters:
                if len(letters) >= 52:
                    raise Unsupported("einsum over more than 52 axes")
                letters[name] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(letters)]
    spec = ",".join("".join(letters[n] for n in t.names) for t in ins)
    spec += "->" + "".join(letters[n] for n in out.names)
    return Expr(f"torch.einsum({spec!r}, {', '.join(x.text for x in args)})")


def _einsum_saves(a: EinsumAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """torch.einsum first sums out the axes only one operand has (and the output lacks), then contracts
    the operands pairwise with bmm, which keeps each one for the other's gradient: an operand whose axes
    all meet another operand or the output is kept as it is, a summed one as the new, smaller tensor.
    Two operands go to bmm as [shared, own, contracted] and [shared, contracted, own]: where that reshape
    cannot be a view of an operand's layout (a slice, a split, an order that does not group so), torch
    keeps the contiguous copy it makes. The result is bmm's [shared, own left, own right] permuted back.
    (Exact for one or two operands; with more, the intermediate products are left out.)"""
    if len(ins) == 1:
        return Saved()
    o = R.tensor(out)
    outs = set(o.names)
    groups = _bmm_groups(ins, o) if len(ins) == 2 else None
    keep: list[int] = []
    new: list[Kept] = []
    for i, t in enumerate(ins):
        if not any(g for j, g in enumerate(ctx.grads) if j != i):
            continue
        others = {n for j, u in enumerate(ins) if j != i for n in u.names} | outs
        if not all(n in others for n in t.names):
            new.append(Kept(S.prod(ax.size for ax in t.axes if ax.name in others), t.dtype))
        elif groups is not None and _bmm_copies(t, groups[i], ctx, i):
            new.append(Sv.copy_of(t))
        else:
            keep.append(i)
    if groups is None:
        return Saved(inputs=tuple(keep), new=tuple(new))
    shared, left, _, right = groups[2]
    order = [o.index(n) for n in shared + left + right]
    order += [k for k in range(len(o.axes)) if k not in order]
    if order == list(range(len(o.axes))):
        return Saved(inputs=tuple(keep), new=tuple(new))
    return Saved(inputs=tuple(keep), new=tuple(new), contiguous=False, order=tuple(order))


def _bmm_groups(ins: list[TensorType], out: TensorType) -> list[list[list[str]]]:
    """torch's sumproduct_pair: the axes (longer than 1) in the order einsum lays them out (the output's,
    then the contracted ones as they first appear), sorted into shared (both operands, kept), own
    (one operand, kept) and contracted (both, summed). Returns the left operand's [shared, own,
    contracted], the right one's [shared, contracted, own], and (shared, own left, contracted, own right)."""
    x, y = ins
    names = list(out.names) + [n for t in ins for n in t.names if not out.has(n)]
    shared, left, summed, right = [], [], [], []
    for n in dict.fromkeys(names):
        sl = x.has(n) and not Sv.one(x.size(n))
        sr = y.has(n) and not Sv.one(y.size(n))
        if not out.has(n):
            if sl and sr:
                summed.append(n)
        elif sl and sr:
            shared.append(n)
        elif sl:
            left.append(n)
        elif sr:
            right.append(n)
    return [[shared, left, summed], [shared, summed, right], [shared, left, summed, right]]


def _bmm_copies(t: TensorType, groups: list[list[str]], ctx: SaveCtx, i: int) -> bool:
    """Whether reshaping operand `t` (input i) to bmm's three axes `groups` copies it."""
    ones = {ax.name for ax in t.axes if Sv.one(ax.size)}
    known = Sv.layout(ctx, i, t.names)
    if known is not None:
        return Sv.relayout(known[0], groups, ones, known[1]).view is None
    # a layout not known (a broadcast): a merge of two axes longer than 1 copies
    return any(len([n for n in g if n not in ones]) > 1 for g in groups)


define(OpDef(
    key="EINSUM", name="einsum", attrs=EinsumAttrs, tensors=(1, 8), traits=frozenset({Trait.CONTRACTION}),
    shape=_einsum_shape, cost=_einsum_cost, torch=TorchLowering(forward=_einsum_forward),
    glyph=Glyph("einsum", "∪", G.LEARNED),
    doc="contraction over named axes: a spec 'a b, b c -> a c' or over=[b]", dtypes=FLOATING, saves=_einsum_saves))

# ---- attention ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttentionAttrs(Attrs):
    seq: str = arg("axis")
    chan: str = arg("axis")
    causal: bool = arg("bool", False)
    scale: float | None = arg("float", None)


def _attention_shape(ctx: ShapeCtx, ins: list[TensorType], a: AttentionAttrs
                     ) -> tuple[Type, tuple[ParamSpec, ...], AttentionAttrs]:
    q, k, v = ins
    seq, chan = a.seq, a.chan
    if seq == chan:
        raise R.fail(f"seq and chan are one axis, '{seq}': attention needs a sequence axis and a feature axis",
                     "chan", "arg")
    for t, nm in ((q, "q"), (k, "k"), (v, "v")):
        R.axis_of(t, seq, "seq", f"(the sequence axis of {nm})")
        R.axis_of(t, chan, "chan", f"(the feature axis of {nm})")
    if not (q.names == k.names == v.names):
        raise R.fail(f"q, k and v must have the same axes: {q}, {k}, {v}")
    for ax in q.axes:
        if ax.name == seq:
            continue
        if ax.name == chan:
            ctx.require_equal(ax.size, k.size(chan), "the feature axis of q and k")
            continue
        ctx.require_equal(ax.size, k.size(ax.name), f"axis '{ax.name}' of q and k")
        ctx.require_equal(ax.size, v.size(ax.name), f"axis '{ax.name}' of q and v")
    ctx.require_equal(k.size(seq), v.size(seq), "the sequence axis of k and v")
    return q.with_size(chan, v.size(chan)), (), a


def _attention_cost(a: AttentionAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    q, k, v = ins
    scores = S.mul(S.floordiv(q.numel(), q.size(a.chan)) if S.is_concrete(q.numel())
                   else S.truediv(q.numel(), q.size(a.chan)), k.size(a.seq))
    macs = S.add(S.mul(scores, q.size(a.chan)), S.mul(scores, v.size(a.chan)))
    return Cost().add("attention", macs).add("softmax", S.mul(5, scores)).add("elementwise", scores)


def _attention_forward(a: AttentionAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx,
                       args: list[Expr]) -> Expr:
    """torch's scaled_dot_product_attention wants [..., seq, chan]; other layouts move those two axes last
    and back (q, k and v have the same axes in the same order: the shape rule checks)."""
    q = ins[0]
    s, c = q.index(a.seq), q.index(a.chan)
    last = q.names[-2:] == (a.seq, a.chan)
    texts = [x.text if last else f"torch.movedim({x.text}, ({s}, {c}), (-2, -1))" for x in args]
    kw = ""
    if a.causal:
        kw += ", is_causal=True"
    if a.scale is not None:
        kw += f", scale={T.lit(float(a.scale))}"
    call = f"F.scaled_dot_product_attention({', '.join(texts)}{kw})"
    return Expr(call if last else f"torch.movedim({call}, (-2, -1), ({s}, {c}))")


def _rows(t: TensorType, chan: str) -> Size:
    """The elements of `t` per feature vector: every axis but `chan`."""
    return S.prod(ax.size for ax in t.axes if ax.name != chan)


def _attention_saves(a: AttentionAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """On CPU, 4-axis q, k, v whose chan axis lies innermost in memory (stride 1, once seq and chan are
    moved last) run torch's flash kernel: it keeps q, k, v, its output (laid out as q) and one fp32
    log-sum-exp per query row. Otherwise torch runs the composite: q and k scaled (copies), the softmax
    of the scores, and v as its matmul takes it ([batch, seq, chan], a copy where that reshape cannot be
    a view); its result, [..., seq, chan] moved back, is dense with seq and chan innermost."""
    q, k, v = ins
    if len(q.axes) == 4 and all(_chan_innermost(t, a.chan, ctx, i) for i, t in enumerate(ins)):
        known = ctx.layouts[0]
        order = known[0] if known is not None else tuple(range(4))
        dense = order == (0, 1, 2, 3)
        return Saved(inputs=(0, 1, 2), output=True, new=(Kept(_rows(q, a.chan), "f32"),), contiguous=dense,
                     order=None if dense else order)
    scores = S.mul(_rows(q, a.chan), k.size(a.seq))
    batch = [n for n in v.names if n not in (a.seq, a.chan)]
    ones = {ax.name for ax in v.axes if Sv.one(ax.size)}
    laid = Sv.layout(ctx, 2, v.names)
    if laid is not None:
        copies = Sv.relayout(laid[0], [batch, [a.seq], [a.chan]], ones, laid[1]).view is None
    else:  # a layout not known (a broadcast): a merge of two axes longer than 1 copies
        copies = len([n for n in batch if n not in ones]) > 1
    kept_v = (Sv.copy_of(v),) if copies else ()
    o = R.tensor(out)
    moved = tuple(i for i, n in enumerate(o.names) if n not in (a.seq, a.chan)) + (o.index(a.seq), o.index(a.chan))
    back = moved if Sv.moves_data(o, moved) else None
    return Saved(inputs=() if copies else (2,), new=(Sv.copy_of(q), Sv.copy_of(k), Kept(scores, q.dtype)) + kept_v,
                 contiguous=back is None, order=back)


def _chan_innermost(t: TensorType, chan: str, ctx: SaveCtx, i: int) -> bool:
    """Whether input i's `chan` axis lies innermost in memory, side by side (stride 1)."""
    known = ctx.layouts[i]
    if known is None or not known[2]:
        return False
    live = [k for k in known[0] if not Sv.one(t.axes[k].size)]
    return not live or live[-1] == t.index(chan)


define(OpDef(
    key="ATTENTION", name="attention", attrs=AttentionAttrs, tensors=3,
    traits=frozenset({Trait.CONTRACTION, Trait.ATTENTION}),
    shape=_attention_shape, cost=_attention_cost, torch=TorchLowering(forward=_attention_forward),
    glyph=Glyph("attention", "Attn", G.ATTN),
    doc="scaled dot-product attention softmax(q·kᵀ·scale)·v over named axes", dtypes=FLOAT,
    saves=_attention_saves))

# ---- multi-head attention -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class MHAAttrs(Attrs):
    heads: Size = arg("size")
    seq: str | None = arg("axis", None)
    chan: str | None = arg("axis", None)
    bias: bool = arg("bool", True)
    dropout: float = arg("float", 0.0)


def _mha_shape(ctx: ShapeCtx, ins: list[TensorType], a: MHAAttrs) -> tuple[Type, tuple[ParamSpec, ...], MHAAttrs]:
    q = ins[0]
    if len(ins) == 2:
        raise R.fail("multihead_attention takes one tensor (self-attention) or three (q, k, v)", None, "arg")
    chan = a.chan or q.names[-1]
    seq = a.seq or (q.names[-2] if len(q.axes) >= 2 else None)
    if seq is None:
        raise R.fail("multihead_attention needs a sequence axis", "seq")
    R.axis_of(q, chan, "chan")
    R.axis_of(q, seq, "seq")
    if seq == chan:
        raise R.fail(f"seq and chan are one axis, '{seq}': attention needs a sequence axis and a feature axis",
                     "chan" if a.chan else "seq", "arg")
    d = q.size(chan)
    for t in ins[1:]:
        if t.names != q.names:
            raise R.fail(f"k and v must have the axes of q {q}, got {t}")
        ctx.require_equal(t.size(chan), d, "the feature axis of k and v")
        for ax in q.axes:  # the batch axes: one attention per position of theirs, in q, k and v alike
            if ax.name not in (seq, chan):
                ctx.require_equal(t.size(ax.name), ax.size, f"axis '{ax.name}' of q, k and v")
    if len(ins) == 3:
        ctx.require_equal(ins[2].size(seq), ins[1].size(seq), f"the sequence axis '{seq}' of k and v")
    R.check_min((a.heads,), "heads", 1)
    ctx.require_divisible(d, a.heads, f"'{chan}' by heads", "heads")
    params = [ParamSpec("in_proj_weight", (S.mul(3, d), d))]
    if a.bias:
        params.append(ParamSpec("in_proj_bias", (S.mul(3, d),)))
    params.append(ParamSpec("out_proj.weight", (d, d)))
    if a.bias:
        params.append(ParamSpec("out_proj.bias", (d,)))
    return q, tuple(params), a


def _mha_cost(a: MHAAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    q = ins[0]
    k = ins[1] if len(ins) == 3 else q
    chan = a.chan or q.names[-1]
    seq = a.seq or q.names[-2]
    d = q.size(chan)
    rows_q = S.truediv(q.numel(), d) if not S.is_concrete(q.numel()) else S.floordiv(q.numel(), d)
    rows_k = S.truediv(k.numel(), d) if not S.is_concrete(k.numel()) else S.floordiv(k.numel(), d)
    proj = S.add(S.mul(rows_q, S.mul(d, d)), S.mul(S.mul(2, rows_k), S.mul(d, d)))
    out_proj = S.mul(rows_q, S.mul(d, d))
    scores_per_head = S.mul(rows_q, k.size(seq))  # over batch x Lq x Lk
    c = Cost().add("linear", S.add(proj, out_proj))
    c.add("attention", S.mul(S.mul(2, scores_per_head), d))
    c.add("softmax", S.mul(5, S.mul(scores_per_head, a.heads)))
    c.add("elementwise", S.mul(scores_per_head, a.heads))
    if a.bias:
        c.add("bias", S.add(S.mul(rows_q, S.mul(2, d)), S.mul(rows_k, S.mul(2, d))))
    return c


def _mha_layout(a: MHAAttrs, x: TensorType) -> tuple[bool, tuple[int, ...] | None]:
    """batch_first for nn.MultiheadAttention, and None where x is in one of its layouts ([seq, chan],
    [seq, batch, chan], [batch, seq, chan]); else how MultiheadAttentionAt moves x: its dimensions
    in the order (the other axes, seq, chan)."""
    chan = a.chan or x.names[-1]
    seq = a.seq or x.names[-2]
    if x.names[-1] == chan:
        if len(x.names) == 2:
            return False, None  # unbatched: [seq, chan]
        if len(x.names) == 3 and x.names[1] == seq:
            return True, None
        if len(x.names) == 3 and x.names[0] == seq:
            return False, None
    others = [i for i, n in enumerate(x.names) if n not in (seq, chan)]
    return True, tuple(others + [x.index(seq), x.index(chan)])


def _mha_module(a: MHAAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    x = ins[0]
    d = ctx.const(x.size(a.chan or x.names[-1]), "embed_dim")
    batch_first, dims = _mha_layout(a, x)
    kw: list[tuple[str, Any, Any]] = [("dropout", float(a.dropout), 0.0), ("bias", a.bias, True)]
    if dims is not None:
        ctx.helper("MultiheadAttentionAt")
        moved = f", dims={dims}, batch={len(dims) - 2}"
        return f"MultiheadAttentionAt({d}, {ctx.const(a.heads, 'num_heads')}{T.kwargs(kw)}{moved})"
    kw.append(("batch_first", batch_first, False))
    return f"nn.MultiheadAttention({d}, {ctx.const(a.heads, 'num_heads')}{T.kwargs(kw)})"


def _mha_call(a: MHAAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, mod: str, args: list[Expr]) -> Expr:
    qkv = [args[0].text] * 3 if len(args) == 1 else [x.text for x in args]
    return Expr(f"{mod}({', '.join(qkv)}, need_weights=False)[0]")


def _mha_saves(a: MHAAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """F.multi_head_attention_forward (need_weights=False) in training, on CPU. The in-projection keeps
    its inputs (a contiguous copy where batch_first's transpose moves data); it makes one packed
    projection when q, k and v are one tensor, a q and a packed k-v one when k is v, else three. With
    dropout, the composite attention keeps q and k scaled, v (its projection's storage), the softmax,
    the dropout noise and the dropped weights, and the out-projection a contiguous copy of the heads
    merged; without, the flash kernel keeps q, k, v (the projections), its output (laid out so that
    merging the heads is a view of it, which the out-projection keeps) and a log-sum-exp per row."""
    q = ins[0]
    k = ins[1] if len(ins) == 3 else q
    chan, seq = a.chan or q.names[-1], a.seq or q.names[-2]
    e, lq, lk = q.size(chan), q.size(seq), k.size(seq)
    batch = S.prod(ax.size for ax in q.axes if ax.name not in (chan, seq))
    batch_first, dims = _mha_layout(a, q)
    # the result's layout: [seq, batch, chan] in memory, in q's axes (batch_first transposes it back)
    order: tuple[int, ...] | None = (1, 0, 2) if batch_first and dims is None else None
    if dims is not None:
        order = (q.index(seq), *(i for i in range(len(q.axes)) if q.names[i] not in (seq, chan)), q.index(chan))
    moved = order is not None and Sv.moves_data(q, order)
    src = ctx.sources if len(ins) == 3 else (ctx.sources[0],) * 3
    distinct = [i for i in range(len(ins)) if src[i] not in src[:i]]
    # the in-projection flattens each input, as [seq, batch, chan] (batch-first ones transposed), to
    # [seq·batch, chan]: a view of its layout, or a copy
    keep_in = tuple(i for i in distinct if not _in_projection_copies(ins[i], seq, chan, ctx, i))
    copies = tuple(Sv.copy_of(ins[i]) for i in distinct if i not in keep_in)
    q_el, k_el = S.mul(lq, S.mul(batch, e)), S.mul(lk, S.mul(batch, e))
    dt = q.dtype
    projections: tuple[Kept, ...]
    if src[0] == src[1] == src[2]:
        projections = (Kept(S.mul(3, q_el), dt),)
    elif src[1] == src[2]:
        projections = (Kept(q_el, dt), Kept(S.mul(2, k_el), dt))
    else:
        projections = (Kept(q_el, dt), Kept(k_el, dt), Kept(k_el, dt))
    scores = Kept(S.mul(S.mul(batch, a.heads), S.mul(lq, lk)), dt)
    attention: tuple[Kept, ...]
    if a.dropout > 0:
        attention = (Kept(q_el, dt), Kept(k_el, dt), projections[-1], scores, scores, scores, Kept(q_el, dt))
    else:
        attention = projections + (Kept(q_el, dt), Kept(S.mul(S.mul(batch, a.heads), lq), "f32"))
    return Saved(inputs=keep_in, new=copies + attention, contiguous=not moved, order=order if moved else None)


def _in_projection_copies(t: TensorType, seq: str, chan: str, ctx: SaveCtx, i: int) -> bool:
    """Whether flattening input i, `t`, to [seq·batch, chan] for the in-projection copies it."""
    if len(t.axes) <= 2:
        return False
    rows = [seq] + [n for n in t.names if n not in (seq, chan)]
    ones = {ax.name for ax in t.axes if Sv.one(ax.size)}
    known = Sv.layout(ctx, i, t.names)
    if known is not None:
        return Sv.relayout(known[0], [rows, [chan]], ones, known[1]).view is None
    return len([n for n in rows if n not in ones]) > 1  # a layout not known: a merge of two long axes copies


define(OpDef(
    key="MHA", name="multihead_attention", attrs=MHAAttrs, tensors=(1, 3),
    traits=frozenset({Trait.CONTRACTION, Trait.ATTENTION, Trait.PARAMETERS, Trait.RANDOM}),
    shape=_mha_shape, cost=_mha_cost, torch=TorchLowering(module=_mha_module, call=_mha_call, repeats=True),
    glyph=Glyph("attention", "MHA", G.ATTN),
    doc="nn.MultiheadAttention (packed in_proj_weight), self-attention by default", dtypes=FLOAT,
    saves=_mha_saves))

__all__ = ["Op"]
