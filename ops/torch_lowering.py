"""PyTorch lowering of every primitive op: one entry per `Op` in the table `LOWERINGS`.

An entry gives up to three functions, each of (node, input types, ctx, ...):

  module    the text of an `nn.Module` that performs the op on one input: the
            attribute of an op that owns parameters, or a numbered step of a
            sequence (`nn.ReLU()` for a stateless `relu()` step);
  forward   the expression of a stateless op in forward (`F.relu(x)`), from
            the expressions of its inputs;
  call      how forward calls the op's module (default `self.m(x)`).

Tensors are laid out as their types say: the axes in order, one dimension
each. A lowering that needs torch's layout (channels at dim 1 for a conv,
features last for a linear) checks it and raises `Unsupported` otherwise,
rather than emitting wrong code. Sizes reach the text through `ctx.const`
(a construction-time integer) and `ctx.size` (a run-time size expression).

>>> from types import SimpleNamespace as Node_
>>> LOWERINGS[Op.RELU].forward(Node_(op=Op.RELU), [], None, [Expr("bn1")]).text
'F.relu(bn1)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from archc.ir.graph import Node, Op
from archc.ops.rules import _pattern_side
from archc.shapes.types import TensorType

ATOM, MUL, ADD = 3, 2, 1  # precedence of an expression's text, for inlining


@dataclasses.dataclass(frozen=True)
class Expr:
    text: str
    prec: int = ATOM

    def atom(self) -> str:
        """The text, parenthesised unless it already binds like a name or a call."""
        return self.text if self.prec >= ATOM else f"({self.text})"

    def at(self, prec: int) -> str:
        return self.text if self.prec >= prec else f"({self.text})"


class Unsupported(Exception):
    """The op (with these attributes or this layout) has no lowering yet."""


class Ctx(Protocol):
    def const(self, x: Any, what: str) -> int: ...
    def size(self, x: Any) -> str: ...
    def helper(self, name: str) -> None: ...


@dataclasses.dataclass(frozen=True)
class OpLowering:
    module: Callable[..., str] | None = None
    forward: Callable[..., Expr] | None = None
    call: Callable[..., Expr] | None = None


LOWERINGS: dict[Op, OpLowering] = {}


def lowering(*ops: Op, module=None, forward=None, call=None) -> None:
    for op in ops:
        LOWERINGS[op] = OpLowering(module, forward, call)


# ---- small helpers ---------------------------------------------------------------------


def _lit(v: Any) -> str:
    """A Python literal for an attribute value (ints, floats, bools, strings, tuples)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (list, tuple)):
        items = [_lit(x) for x in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise Unsupported(f"cannot write the value {v!r} in Python")


def _ints(ctx: Ctx, xs: Any, what: str) -> Any:
    """Construction-time integers; one int when every axis has the same value."""
    vals = tuple(ctx.const(x, what) for x in xs)
    return vals[0] if len(set(vals)) == 1 else vals


def _kwargs(pairs: list[tuple[str, Any, Any]]) -> str:
    """`name=value` for each value that differs from torch's default."""
    return "".join(f", {k}={_lit(v)}" for k, v, default in pairs if v != default)


def _spatial(node: Node, x: TensorType, what: str, channel: str | None = None) -> int:
    """Check torch's layout for a windowed op: [batch?, channel?, *spatial] with the spatial
    axes last and in order, and the channel axis (if any) right before them. Returns n."""
    names = list(node.attrs["spatial"])
    n = len(names)
    if tuple(x.names[len(x.names) - n:]) != tuple(names):
        raise Unsupported(f"{what} on the axes {names} of {x}: torch needs them to be the last "
                          f"{n} axes, in order (rearrange first)")
    lead = len(x.names) - n
    if channel is not None:
        if lead not in (1, 2) or x.names[lead - 1] != channel:
            raise Unsupported(f"{what} with channel axis '{channel}' on {x}: torch needs "
                              f"[batch, {channel}, *spatial] (rearrange first)")
    elif lead not in (1, 2):
        raise Unsupported(f"{what} on {x}: torch needs one or two axes before the spatial ones")
    return n


def _pads(node: Node, ctx: Ctx, what: str) -> Any:
    if node.attrs.get("pad") == "same":
        return "same"
    pads = node.attrs["pads"]
    if any(ctx.const(a, "padding") != ctx.const(b, "padding") for a, b in pads):
        raise Unsupported(f"{what} with asymmetric padding {[list(p) for p in pads]} is not lowered yet")
    return _ints(ctx, [a for a, _ in pads], "padding")


def _dims(x: TensorType, names: Any) -> tuple[int, ...]:
    return tuple(x.index(n) for n in names)


def _dim_lit(dims: tuple[int, ...]) -> str:
    return str(dims[0]) if len(dims) == 1 else _lit(dims)


# ---- contractions --------------------------------------------------------------------------


def _linear_module(node, ins, ctx):
    (x,) = ins
    axis, out, _ = node.attrs["map"]
    if x.names[-1] != axis:
        raise Unsupported(f"linear on '{axis}' of {x}: torch's nn.Linear acts on the last axis "
                          "(rearrange first)")
    n_in = ctx.const(x.size(axis), "in_features")
    return f"nn.Linear({n_in}, {ctx.const(out, 'out_features')}{_kwargs([('bias', node.attrs['bias'], True)])})"


lowering(Op.LINEAR, module=_linear_module)


def _conv_module(node, ins, ctx):
    (x,) = ins
    transposed = node.op is Op.CONV_T
    what = "conv_transpose" if transposed else "conv"
    axis, out, _ = node.attrs["map"]
    n = _spatial(node, x, what, axis)
    cin, cout = ctx.const(x.size(axis), "in_channels"), ctx.const(out, "out_channels")
    k = _ints(ctx, node.attrs["kernel"], "kernel_size")
    pad = _pads(node, ctx, what)
    cls = f"nn.ConvTranspose{n}d" if transposed else f"nn.Conv{n}d"
    kw = [("stride", _ints(ctx, node.attrs["strides"], "stride"), 1), ("padding", pad, 0)]
    if transposed:
        kw.append(("output_padding", _ints(ctx, _per(node.attrs["output_padding"], n), "output_padding"), 0))
    kw += [("dilation", _ints(ctx, node.attrs["dilations"], "dilation"), 1),
           ("groups", ctx.const(node.attrs["groups"], "groups"), 1), ("bias", node.attrs["bias"], True)]
    return f"{cls}({cin}, {cout}, kernel_size={_lit(k)}{_kwargs(kw)})"


def _per(v: Any, n: int) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


lowering(Op.CONV, Op.CONV_T, module=_conv_module)


def _einsum_forward(node, ins, ctx, args):
    letters: dict[str, str] = {}
    out = node.type
    for t in list(ins) + [out]:
        for name in t.names:
            if name not in letters:
                if len(letters) >= 52:
                    raise Unsupported("einsum over more than 52 axes")
                letters[name] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(letters)]
    spec = ",".join("".join(letters[n] for n in t.names) for t in ins)
    spec += "->" + "".join(letters[n] for n in out.names)
    return Expr(f"torch.einsum({spec!r}, {', '.join(a.text for a in args)})")


lowering(Op.EINSUM, forward=_einsum_forward)


def _attention_forward(node, ins, ctx, args):
    q, k, v = ins
    seq, chan = node.attrs["seq"], node.attrs["chan"]
    for t in (q, k, v):
        if t.names[-2:] != (seq, chan):
            raise Unsupported(f"attention on {t}: torch's scaled_dot_product_attention needs the "
                              f"sequence axis '{seq}' and the feature axis '{chan}' last (rearrange first)")
    kw = ""
    if node.attrs["causal"]:
        kw += ", is_causal=True"
    if node.attrs["scale"] is not None:
        kw += f", scale={_lit(float(node.attrs['scale']))}"
    return Expr(f"F.scaled_dot_product_attention({', '.join(a.text for a in args)}{kw})")


lowering(Op.ATTENTION, forward=_attention_forward)


def _mha_layout(node, x: TensorType) -> bool:
    """batch_first for nn.MultiheadAttention, after checking the layout."""
    chan = node.attrs["chan"] or x.names[-1]
    seq = node.attrs["seq"] or x.names[-2]
    if x.names[-1] != chan:
        raise Unsupported(f"multihead_attention on {x}: the feature axis '{chan}' must be last")
    if len(x.names) == 2:
        return False  # unbatched: [seq, chan]
    if len(x.names) != 3:
        raise Unsupported(f"multihead_attention on {x}: nn.MultiheadAttention takes 2 or 3 axes")
    if x.names[1] == seq:
        return True
    if x.names[0] == seq:
        return False
    raise Unsupported(f"multihead_attention on {x}: no sequence axis '{seq}'")


def _mha_module(node, ins, ctx):
    x = ins[0]
    d = ctx.const(x.size(node.attrs["chan"] or x.names[-1]), "embed_dim")
    kw = [("dropout", float(node.attrs["dropout"]), 0.0), ("bias", node.attrs["bias"], True),
          ("batch_first", _mha_layout(node, x), False)]
    return f"nn.MultiheadAttention({d}, {ctx.const(node.attrs['heads'], 'num_heads')}{_kwargs(kw)})"


def _mha_call(node, ins, ctx, mod, args):
    qkv = [args[0].text] * 3 if len(args) == 1 else [a.text for a in args]
    return Expr(f"{mod}({', '.join(qkv)}, need_weights=False)[0]")


lowering(Op.MHA, module=_mha_module, call=_mha_call)


# ---- pooling and reductions -------------------------------------------------------------------


def _pool_args(node, ins, ctx, what):
    n = _spatial(node, ins[0], what)
    k = _ints(ctx, node.attrs["kernel"], "kernel_size")
    s = _ints(ctx, node.attrs["strides"], "stride")
    pad = _pads(node, ctx, what)
    if pad == "same":
        raise Unsupported(f"{what} with pad=\"same\" is not lowered yet")
    return n, k, s, pad


def _maxpool_module(node, ins, ctx):
    n, k, s, pad = _pool_args(node, ins, ctx, "maxpool")
    kw = [("stride", s, k), ("padding", pad, 0), ("dilation", _ints(ctx, node.attrs["dilations"], "dilation"), 1),
          ("ceil_mode", node.attrs["ceil"], False)]
    return f"nn.MaxPool{n}d({_lit(k)}{_kwargs(kw)})"


def _maxpool_forward(node, ins, ctx, args):
    n, k, s, pad = _pool_args(node, ins, ctx, "maxpool")
    kw = [("stride", s, k), ("padding", pad, 0), ("dilation", _ints(ctx, node.attrs["dilations"], "dilation"), 1),
          ("ceil_mode", node.attrs["ceil"], False)]
    return Expr(f"F.max_pool{n}d({args[0].text}, {_lit(k)}{_kwargs(kw)})")


def _avgpool_kw(node, ins, ctx):
    n, k, s, pad = _pool_args(node, ins, ctx, "avgpool")
    return n, k, [("stride", s, k), ("padding", pad, 0), ("ceil_mode", node.attrs["ceil"], False),
                  ("count_include_pad", node.attrs["count_include_pad"], True)]


def _avgpool_module(node, ins, ctx):
    n, k, kw = _avgpool_kw(node, ins, ctx)
    return f"nn.AvgPool{n}d({_lit(k)}{_kwargs(kw)})"


def _avgpool_forward(node, ins, ctx, args):
    n, k, kw = _avgpool_kw(node, ins, ctx)
    return Expr(f"F.avg_pool{n}d({args[0].text}, {_lit(k)}{_kwargs(kw)})")


lowering(Op.MAXPOOL, module=_maxpool_module, forward=_maxpool_forward)
lowering(Op.AVGPOOL, module=_avgpool_module, forward=_avgpool_forward)


def _adaptive(node, ins, ctx):
    n = _spatial(node, ins[0], node.op.value)
    out = _ints(ctx, [node.type.size(a) for a in node.attrs["spatial"]], "output_size")
    kind = "Avg" if node.op is Op.ADAPTIVE_AVGPOOL else "Max"
    return n, kind, _lit(out)


def _adaptive_module(node, ins, ctx):
    n, kind, out = _adaptive(node, ins, ctx)
    return f"nn.Adaptive{kind}Pool{n}d({out})"


def _adaptive_forward(node, ins, ctx, args):
    n, kind, out = _adaptive(node, ins, ctx)
    return Expr(f"F.adaptive_{kind.lower()}_pool{n}d({args[0].text}, {out})")


lowering(Op.ADAPTIVE_AVGPOOL, Op.ADAPTIVE_MAXPOOL, module=_adaptive_module, forward=_adaptive_forward)

_REDUCE = {Op.MEAN: "mean", Op.SUM: "sum", Op.AMAX: "amax"}


def _reduce_forward(node, ins, ctx, args):
    dims = _dims(ins[0], node.attrs["over"])
    keep = ", keepdim=True" if node.attrs["keep"] else ""
    return Expr(f"{args[0].atom()}.{_REDUCE[node.op]}({_dim_lit(dims)}{keep})")


def _reduce_module(node, ins, ctx):
    ctx.helper("Reduce")
    dims = _dims(ins[0], node.attrs["over"])
    keep = ", keepdim=True" if node.attrs["keep"] else ""
    return f"Reduce({_REDUCE[node.op]!r}, {_lit(dims)}{keep})"


lowering(Op.MEAN, Op.SUM, Op.AMAX, module=_reduce_module, forward=_reduce_forward)


# ---- normalisation -------------------------------------------------------------------------------


def _channel_axis(node, x: TensorType) -> str:
    return node.attrs["axis"] or x.names[1]


def _batchnorm_module(node, ins, ctx):
    (x,) = ins
    axis = _channel_axis(node, x)
    if x.index(axis) != 1 or not 2 <= len(x.names) <= 5:
        raise Unsupported(f"batchnorm of '{axis}' on {x}: torch needs [batch, {axis}, ...] with 2 to 5 axes")
    n = {2: 1, 3: 1, 4: 2, 5: 3}[len(x.names)]
    a = node.attrs
    kw = [("eps", float(a["eps"]), 1e-5), ("momentum", float(a["momentum"]), 0.1), ("affine", a["affine"], True),
          ("track_running_stats", a["track_running_stats"], True)]
    return f"nn.BatchNorm{n}d({ctx.const(x.size(axis), 'num_features')}{_kwargs(kw)})"


lowering(Op.BATCHNORM, module=_batchnorm_module)


def _over(node, x: TensorType) -> tuple[int, ...]:
    names = node.attrs["over"] or (x.names[-1],)
    dims = _dims(x, names)
    if list(dims) != list(range(dims[0], dims[0] + len(dims))):
        raise Unsupported(f"{node.op.value} over {list(names)} of {x}: the axes must be adjacent and in order")
    return dims


def _layernorm_module(node, ins, ctx):
    (x,) = ins
    dims = _over(node, x)
    shape = _ints(ctx, [x.axes[d].size for d in dims], "normalized_shape")
    shape = shape if isinstance(shape, tuple) or len(dims) == 1 else (shape,) * len(dims)
    a = node.attrs
    kw = [("eps", float(a["eps"]), 1e-5), ("elementwise_affine", a["affine"], True),
          ("bias", a["bias"] if a["affine"] else True, True)]
    if dims[-1] == len(x.names) - 1:
        return f"nn.LayerNorm({_lit(shape)}{_kwargs(kw)})"
    ctx.helper("LayerNormAt")
    return f"LayerNormAt({_lit(shape)}, dim={dims[0]}{_kwargs(kw)})"


def _rmsnorm_module(node, ins, ctx):
    (x,) = ins
    dims = _over(node, x)
    if dims[-1] != len(x.names) - 1:
        raise Unsupported(f"rmsnorm over inner axes of {x}: torch's nn.RMSNorm normalises the last axes")
    shape = _ints(ctx, [x.axes[d].size for d in dims], "normalized_shape")
    eps = node.attrs["eps"]
    kw = [("eps", None if eps is None else float(eps), None), ("elementwise_affine", node.attrs["affine"], True)]
    return f"nn.RMSNorm({_lit(shape)}{_kwargs(kw)})"


def _groupnorm_module(node, ins, ctx):
    (x,) = ins
    axis = _channel_axis(node, x)
    if x.index(axis) != 1:
        raise Unsupported(f"groupnorm of '{axis}' on {x}: torch needs the channel axis at position 1")
    kw = [("eps", float(node.attrs["eps"]), 1e-5), ("affine", node.attrs["affine"], True)]
    return (f"nn.GroupNorm({ctx.const(node.attrs['groups'], 'num_groups')}, "
            f"{ctx.const(x.size(axis), 'num_channels')}{_kwargs(kw)})")


lowering(Op.LAYERNORM, module=_layernorm_module)
lowering(Op.RMSNORM, module=_rmsnorm_module)
lowering(Op.GROUPNORM, module=_groupnorm_module)


# ---- elementwise ------------------------------------------------------------------------------------

_ACT = {  # op -> (functional, module)
    Op.RELU: ("F.relu", "nn.ReLU"), Op.RELU6: ("F.relu6", "nn.ReLU6"), Op.SILU: ("F.silu", "nn.SiLU"),
    Op.SIGMOID: ("torch.sigmoid", "nn.Sigmoid"), Op.TANH: ("torch.tanh", "nn.Tanh"),
    Op.HARDSWISH: ("F.hardswish", "nn.Hardswish"), Op.HARDSIGMOID: ("F.hardsigmoid", "nn.Hardsigmoid"),
}


# Activations that can overwrite their input, as torchvision's do (`nn.ReLU(inplace=True)`).
# The class builder allows it (`ctx.inplace`) only where the input is a fresh tensor no one else reads.
INPLACE = frozenset({Op.RELU, Op.RELU6, Op.SILU, Op.HARDSWISH, Op.HARDSIGMOID, Op.ADD, Op.SUB})
# (not MUL: its gradient needs the left side as it was, which an in-place product overwrites)
# Ops whose output is always a new tensor (never a view or the input itself).
FRESH = frozenset({Op.CONV, Op.CONV_T, Op.LINEAR, Op.BATCHNORM, Op.LAYERNORM, Op.GROUPNORM, Op.RMSNORM,
                   Op.ADD, Op.SUB, Op.MUL, Op.SCALE})


def _inplace(node, ctx) -> bool:
    return node.op in INPLACE and getattr(ctx, "inplace", False)


def _act_forward(node, ins, ctx, args):
    return Expr(f"{_ACT[node.op][0]}({args[0].text}{', inplace=True' if _inplace(node, ctx) else ''})")


def _act_module(node, ins, ctx):
    return f"{_ACT[node.op][1]}({'inplace=True' if _inplace(node, ctx) else ''})"


lowering(*_ACT, module=_act_module, forward=_act_forward)


def _gelu_kw(node) -> str:
    return "" if node.attrs["approximate"] == "none" else f", approximate={node.attrs['approximate']!r}"


lowering(Op.GELU, module=lambda node, ins, ctx: f"nn.GELU({_gelu_kw(node)[2:]})",
         forward=lambda node, ins, ctx, args: Expr(f"F.gelu({args[0].text}{_gelu_kw(node)})"))
lowering(Op.SOFTMAX,
         module=lambda node, ins, ctx: f"nn.Softmax(dim={ins[0].index(node.attrs['axis'])})",
         forward=lambda node, ins, ctx, args: Expr(f"{args[0].atom()}.softmax({ins[0].index(node.attrs['axis'])})"))
lowering(Op.DROPOUT,
         module=lambda node, ins, ctx: f"nn.Dropout({_lit(float(node.attrs['p']))})",
         forward=lambda node, ins, ctx, args: Expr(
             f"F.dropout({args[0].text}, {_lit(float(node.attrs['p']))}, self.training)"))
lowering(Op.IDENTITY, Op.RENAME,
         module=lambda node, ins, ctx: "nn.Identity()",
         forward=lambda node, ins, ctx, args: args[0])


def _drop_path_module(node, ins, ctx):
    ctx.helper("StochasticDepth")
    return f"StochasticDepth({_lit(float(node.attrs['p']))}, {node.attrs['mode']!r})"


def _drop_path_forward(node, ins, ctx, args):
    ctx.helper("StochasticDepth")
    return Expr(f"stochastic_depth({args[0].text}, {_lit(float(node.attrs['p']))}, {node.attrs['mode']!r}, "
                "self.training)")


lowering(Op.DROP_PATH, module=_drop_path_module, forward=_drop_path_forward)


def _scale_literal(node) -> str:
    f = node.attrs["factor"]
    if isinstance(f, bool) or not isinstance(f, (int, float)):
        raise Unsupported(f"a scale factor of {f} is not a number")
    return _lit(f)


def _scale_module(node, ins, ctx):
    ctx.helper("Scale")
    return f"Scale({_scale_literal(node)})"


lowering(Op.SCALE, module=_scale_module,
         forward=lambda node, ins, ctx, args: Expr(f"{args[0].at(MUL)} * {_scale_literal(node)}", MUL))


def _aligned(x: TensorType, out: TensorType, e: Expr, need: int) -> str:
    """`e` (of type x) with size-1 dimensions inserted so torch's right-aligned broadcasting
    pairs its axes with the same-named axes of `out` (named broadcasting)."""
    pos = [out.index(n) for n in x.names]
    if not pos or pos == list(range(len(out.names) - len(pos), len(out.names))):
        return e.at(need)
    index = [":" if out.names[i] in x.names else "None" for i in range(pos[0], len(out.names))]
    while index and index[-1] == ":":
        index.pop()
    return f"{e.atom()}[{', '.join(index)}]"


def _binary(sym: str, prec: int, method: str):
    def forward(node, ins, ctx, args):
        if getattr(ctx, "inplace", False):  # `bn3.add_(x)`: the left side is a fresh tensor of the result's shape
            return Expr(f"{args[0].atom()}.{method}({_aligned(ins[1], node.type, args[1], 0)})")
        left = _aligned(ins[0], node.type, args[0], prec)
        right = _aligned(ins[1], node.type, args[1], prec + 1)
        return Expr(f"{left} {sym} {right}", prec)
    return forward


lowering(Op.ADD, forward=_binary("+", ADD, "add_"))
lowering(Op.SUB, forward=_binary("-", ADD, "sub_"))
lowering(Op.MUL, forward=_binary("*", MUL, "mul_"))


# ---- data movement ---------------------------------------------------------------------------------


def _rearrange_steps(node, ins, ctx) -> list[tuple[str, Any]]:
    """unflatten / permute / flatten steps that implement a rearrange pattern."""
    (x,) = ins
    lhs_text, rhs_text = node.attrs["pattern"].split("->")
    lhs, rhs = _pattern_side(lhs_text), _pattern_side(rhs_text)
    given = dict(node.attrs["sizes"] or {})
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


def _rearrange_forward(node, ins, ctx, args):
    text = args[0].atom()
    for kind, arg in _rearrange_steps(node, ins, ctx):
        if kind == "unflatten":
            text += f".unflatten({arg[0]}, ({', '.join(arg[1])}))"
        elif kind == "permute":
            swapped = [i for i, p in enumerate(arg) if i != p]
            if len(swapped) == 2:
                text += f".transpose({swapped[0]}, {swapped[1]})"
            else:
                text += f".permute{_lit(arg)}"
        else:
            text += f".flatten({arg[0]}, {arg[1]})"
    return Expr(text)


def _rearrange_module(node, ins, ctx):
    steps = _rearrange_steps(node, ins, ctx)
    if not steps:
        return "nn.Identity()"
    if len(steps) == 1 and steps[0][0] == "permute":
        ctx.helper("Permute")
        return f"Permute({_lit(steps[0][1])})"
    if len(steps) == 1 and steps[0][0] == "flatten":
        return f"nn.Flatten({steps[0][1][0]}, {steps[0][1][1]})"
    if len(steps) == 1 and steps[0][0] == "unflatten" and all(s.lstrip("-").isdigit() for s in steps[0][1][1]):
        return f"nn.Unflatten({steps[0][1][0]}, ({', '.join(steps[0][1][1])},))"
    raise Unsupported(f"the rearrange {node.attrs['pattern']!r} as a sequence step is not lowered yet "
                      "(write it as its own statement)")


lowering(Op.REARRANGE, module=_rearrange_module, forward=_rearrange_forward)


def _flatten_dims(node, ins) -> tuple[int, int]:
    dims = _dims(ins[0], node.attrs["over"])
    return dims[0], dims[-1]


lowering(Op.FLATTEN,
         module=lambda node, ins, ctx: "nn.Flatten({}, {})".format(*_flatten_dims(node, ins)),
         forward=lambda node, ins, ctx, args: Expr("{}.flatten({}, {})".format(args[0].atom(),
                                                                           *_flatten_dims(node, ins))))


def _concat_forward(node, ins, ctx, args):
    return Expr(f"torch.cat([{', '.join(a.text for a in args)}], dim={ins[0].index(node.attrs['axis'])})")


lowering(Op.CONCAT, forward=_concat_forward)


def _split_forward(node, ins, ctx, args):
    (x,) = ins
    d = x.index(node.attrs["axis"])
    if node.attrs["parts"] is not None:
        return Expr(f"torch.chunk({args[0].text}, {ctx.const(node.attrs['parts'], 'parts')}, dim={d})")
    pieces = [t.size(node.attrs["axis"]) for t in node.type.items]
    texts = []
    for p in pieces:
        try:
            texts.append(ctx.size(p))
        except Unsupported:
            texts.append(None)
    if texts.count(None) == 1:  # the one size with no run-time formula: what the others leave
        known = [t for t in texts if t is not None]
        rest = f"{args[0].atom()}.shape[{d}]" + "".join(f" - {t}" for t in known)
        texts[texts.index(None)] = rest
    elif None in texts:
        raise Unsupported("split: more than one piece has a size that changes with the input")
    return Expr(f"torch.split({args[0].text}, [{', '.join(texts)}], dim={d})")


lowering(Op.SPLIT, forward=_split_forward)
lowering(Op.GETITEM, forward=lambda node, ins, ctx, args: Expr(f"{args[0].atom()}[{node.attrs['index']}]"))


def _expand_forward(node, ins, ctx, args):
    (x,) = ins
    out = node.type
    new = len(out.names) - len(x.names)
    sizes = [ctx.size(out.axes[i].size) for i in range(new)]
    for i, ax in enumerate(x.axes):
        target = out.axes[new + i].size
        sizes.append("-1" if ax.size == target else ctx.size(target))
    return Expr(f"{args[0].atom()}.expand({', '.join(sizes)})")


lowering(Op.EXPAND, forward=_expand_forward)


def _embedding_module(node, ins, ctx):
    return f"nn.Embedding({ctx.const(node.attrs['num'], 'num_embeddings')}, {ctx.const(node.attrs['dim'], 'dim')})"


lowering(Op.EMBEDDING, module=_embedding_module)

for _op, _fn, _cls in ((Op.PIXEL_SHUFFLE, "F.pixel_shuffle", "nn.PixelShuffle"),
                       (Op.PIXEL_UNSHUFFLE, "F.pixel_unshuffle", "nn.PixelUnshuffle")):
    lowering(_op,
             module=lambda node, ins, ctx, _cls=_cls: f"{_cls}({ctx.const(node.attrs['r'], 'r')})",
             forward=lambda node, ins, ctx, args, _fn=_fn: Expr(
                 f"{_fn}({args[0].text}, {ctx.const(node.attrs['r'], 'r')})"))


def _upsample_kw(node, ins, ctx, runtime: bool) -> tuple[int, str]:
    a = node.attrs
    x = ins[0]
    idx = [x.index(n) for n in a["over"]] if a["over"] else list(range(2, len(x.names)))
    n = len(idx)
    if idx != list(range(len(x.names) - n, len(x.names))) or len(x.names) != n + 2:
        raise Unsupported(f"upsample on {x}: torch needs [batch, chan, *spatial] with the resampled axes last")
    if a["size"] is not None:
        sizes = [x_ for x_ in _per(a["size"], n)]
        if runtime:
            texts = [ctx.size(s) for s in sizes]
        else:
            texts = [str(ctx.const(s, "size")) for s in sizes]
        kw = f"size=({', '.join(texts)}{',' if n == 1 else ''})"
    else:
        scales = [float(s) for s in _per(a["scale"], n)]
        kw = f"scale_factor={_lit(scales[0] if len(set(scales)) == 1 else tuple(scales))}"
    kw += f", mode={a['mode']!r}"
    if a["mode"] == "bilinear":
        kw += f", align_corners={a['align_corners']!r}"
    return n, kw


lowering(Op.UPSAMPLE,
         module=lambda node, ins, ctx: f"nn.Upsample({_upsample_kw(node, ins, ctx, False)[1]})",
         forward=lambda node, ins, ctx, args: Expr(
             f"F.interpolate({args[0].text}, {_upsample_kw(node, ins, ctx, True)[1]})"))
