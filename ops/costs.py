"""Cost conventions: how the work an op does (its cost rule, `OpDef.cost`) becomes FLOPs.

A cost rule returns a `Cost`: multiply-adds of the contraction kinds (conv, linear,
matmul, attention) and plain operation counts of the other kinds (bias,
elementwise, norm, softmax, pool). Conventions (`CONVENTIONS`) turn those into
one FLOP figure:

  torch  2 per multiply-add of conv, linear and matmul, nothing else; equals
         torch.utils.flop_counter.FlopCounterMode. Attention products are
         reported on their own (kind "attention") and left out of the total,
         as FlopCounterMode leaves them out for nn.MultiheadAttention on CPU.
  macs   1 per multiply-add of conv, linear, matmul and attention
         (fvcore / ptflops style).
  full   2 per multiply-add of every contraction, attention included, plus the
         documented counts of the other kinds (docs/costs.md).

Per-element rules of the full count: bias 1; activation 1; add/sub/mul/scale 1;
batchnorm (inference) 2; layer/group norm 4 (+2 affine with bias, +1 without);
RMS norm 3 (+1 affine); softmax 5; max pool k-1 and avg pool k per output
element (k = window size); reductions 1 per input element; bilinear upsampling
8 per output element; attention's score scaling 1 per score; a Fourier transform of N points
5·N·log2 N (complex) or 2.5·N·log2 N (real), kind "fft" (ops/fft.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from archc.ops.facets import Cost
from archc.ops.registry import Attrs, OpDef, Trait
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import ParamSpec, TensorType, TupleType, Type

CONTRACTIONS = ("conv", "linear", "matmul", "attention")
OTHER_KINDS = ("bias", "elementwise", "norm", "softmax", "pool", "fft")
KINDS = CONTRACTIONS + OTHER_KINDS

# kind -> weight per unit (multiply-add or op) for each convention.
CONVENTIONS: dict[str, dict[str, int]] = {
    "torch": {"conv": 2, "linear": 2, "matmul": 2},
    "macs": {"conv": 1, "linear": 1, "matmul": 1, "attention": 1},
    "full": {"conv": 2, "linear": 2, "matmul": 2, "attention": 2,
             "bias": 1, "elementwise": 1, "norm": 1, "softmax": 1, "pool": 1, "fft": 1},
}


def flops(cost: Cost, convention: str = "torch") -> Size:
    """>>> flops(Cost().add("conv", 10).add("norm", 4)), flops(Cost().add("norm", 4), "full")
    (20, 4)
    """
    w = CONVENTIONS[convention]
    return S.total(S.mul(w[k], v) for k, v in cost.units.items() if k in w)


def by_kind(cost: Cost, convention: str = "torch") -> dict[str, Size]:
    """FLOPs per kind; contractions at 2 (or 1 for macs) per multiply-add even when not in the total."""
    per_mac = 1 if convention == "macs" else 2
    out: dict[str, Size] = {}
    for k, v in cost.units.items():
        out[k] = S.mul(per_mac, v) if k in CONTRACTIONS else v
    return out


def free(a: Attrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    """The cost rule of an op that computes nothing: a view, a data movement, a source, a constant."""
    return Cost()


def per_element(a: Attrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    """The cost rule of a pointwise op: one elementwise operation per output element."""
    assert isinstance(out, TensorType)
    return Cost().add("elementwise", out.numel())


def param_count(params: tuple[ParamSpec, ...]) -> tuple[Size, Size]:
    """(parameters, buffer elements) among an op's state_dict entries."""
    learned = S.total(p.numel() for p in params if not p.buffer)
    buffers = S.total(p.numel() for p in params if p.buffer)
    return learned, buffers


def bytes_moved(op: OpDef[Any], ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> tuple[Size, Size]:
    """(bytes read, bytes written) by one op at inference, parameters read once; views move nothing."""
    if op.has(Trait.VIEW):
        return 0, 0
    read = S.total(t.nbytes() for t in ins)
    read = S.add(read, S.total(p.nbytes() for p in params))
    written = out.nbytes() if isinstance(out, (TensorType, TupleType)) else 0
    return read, written


class _Applied(Protocol):
    """An op applied to inputs, as a graph node is (duck-typed: ops/ comes before ir/)."""

    op: OpDef[Any]
    attrs: Any
    type: Type
    params: tuple[ParamSpec, ...]


def node_cost(node: _Applied, ins: list[TensorType]) -> Cost:
    """The work one applied op does, by its own cost rule."""
    return node.op.cost(node.attrs, ins, node.type, node.params)
