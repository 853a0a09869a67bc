"""Cost rules: what each op costs, in one table keyed by `Op`.

A rule returns a `Cost`: multiply-adds of the contraction kinds (conv, linear,
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
8 per output element; attention's score scaling 1 per score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from archc.ir.graph import ACTIVATIONS, Node, Op
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import TensorType, TupleType

CONTRACTIONS = ("conv", "linear", "matmul", "attention")
OTHER_KINDS = ("bias", "elementwise", "norm", "softmax", "pool")
KINDS = CONTRACTIONS + OTHER_KINDS

# kind -> weight per unit (multiply-add or op) for each convention.
CONVENTIONS: dict[str, dict[str, int]] = {
    "torch": {"conv": 2, "linear": 2, "matmul": 2},
    "macs": {"conv": 1, "linear": 1, "matmul": 1, "attention": 1},
    "full": {"conv": 2, "linear": 2, "matmul": 2, "attention": 2,
             "bias": 1, "elementwise": 1, "norm": 1, "softmax": 1, "pool": 1},
}

# Ops that only relabel or view memory: no FLOPs and no bytes moved at inference.
VIEWS = frozenset({Op.REARRANGE, Op.RENAME, Op.FLATTEN, Op.SPLIT, Op.GETITEM, Op.TUPLE,
                   Op.EXPAND, Op.IDENTITY, Op.DROPOUT, Op.DROP_PATH, Op.PARAM, Op.INPUT})


@dataclasses.dataclass
class Cost:
    units: dict[str, Size] = dataclasses.field(default_factory=dict)  # kind -> MACs or ops

    def add(self, kind: str, n: Size) -> Cost:
        if n != 0:
            self.units[kind] = S.add(self.units.get(kind, 0), n)
        return self


def flops(cost: Cost, convention: str = "torch") -> Size:
    w = CONVENTIONS[convention]
    return S.total(S.mul(w[k], v) for k, v in cost.units.items() if k in w)


def by_kind(cost: Cost, convention: str = "torch") -> dict[str, Size]:
    """FLOPs per kind; contractions at 2 (or 1 for macs) per multiply-add even when not in the total."""
    per_mac = 1 if convention == "macs" else 2
    out: dict[str, Size] = {}
    for k, v in cost.units.items():
        out[k] = S.mul(per_mac, v) if k in CONTRACTIONS else v
    return out


CostRule = Callable[[Node, list[TensorType]], Cost]
COST_RULES: dict[Op, CostRule] = {}


def cost_rule(*ops: Op):
    def register(fn: CostRule) -> CostRule:
        for op in ops:
            COST_RULES[op] = fn
        return fn
    return register


def _out(node: Node) -> TensorType:
    assert isinstance(node.type, TensorType)
    return node.type


def _has_bias(node: Node) -> bool:
    return any(p.name.endswith("bias") and not p.buffer for p in node.params)


@cost_rule(Op.LINEAR)
def _linear(node, ins):
    axis, _, _ = node.attrs["map"]
    macs = S.mul(_out(node).numel(), ins[0].size(axis))
    c = Cost().add("linear", macs)
    return c.add("bias", _out(node).numel()) if _has_bias(node) else c


@cost_rule(Op.CONV)
def _conv(node, ins):
    weight = node.params[0].shape  # [cout, cin/g, *k]
    macs = S.mul(_out(node).numel(), S.prod(weight[1:]))
    c = Cost().add("conv", macs)
    return c.add("bias", _out(node).numel()) if _has_bias(node) else c


@cost_rule(Op.CONV_T)
def _conv_t(node, ins):
    # FlopCounterMode counts a transposed conv over its *input* positions:
    # each input element meets cout/g * prod(k) weights.
    weight = node.params[0].shape  # [cin, cout/g, *k]
    macs = S.mul(ins[0].numel(), S.prod(weight[1:]))
    c = Cost().add("conv", macs)
    return c.add("bias", _out(node).numel()) if _has_bias(node) else c


@cost_rule(Op.EINSUM)
def _einsum(node, ins):
    out = _out(node)
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


@cost_rule(Op.ATTENTION)
def _attention(node, ins):
    q, k, v = ins
    seq, chan = node.attrs["seq"], node.attrs["chan"]
    scores = S.mul(S.floordiv(q.numel(), q.size(chan)) if S.is_concrete(q.numel())
                   else S.truediv(q.numel(), q.size(chan)), k.size(seq))
    macs = S.add(S.mul(scores, q.size(chan)), S.mul(scores, v.size(chan)))
    return Cost().add("attention", macs).add("softmax", S.mul(5, scores)).add("elementwise", scores)


@cost_rule(Op.MHA)
def _mha(node, ins):
    q = ins[0]
    k = ins[1] if len(ins) == 3 else q
    chan = node.attrs["chan"] or q.names[-1]
    seq = node.attrs["seq"] or q.names[-2]
    d = q.size(chan)
    rows_q = S.truediv(q.numel(), d) if not S.is_concrete(q.numel()) else S.floordiv(q.numel(), d)
    rows_k = S.truediv(k.numel(), d) if not S.is_concrete(k.numel()) else S.floordiv(k.numel(), d)
    proj = S.add(S.mul(rows_q, S.mul(d, d)), S.mul(S.mul(2, rows_k), S.mul(d, d)))
    out_proj = S.mul(rows_q, S.mul(d, d))
    scores_per_head = S.mul(rows_q, k.size(seq))  # over batch x Lq x Lk
    c = Cost().add("linear", S.add(proj, out_proj))
    c.add("attention", S.mul(S.mul(2, scores_per_head), d))
    heads = node.attrs["heads"]
    c.add("softmax", S.mul(5, S.mul(scores_per_head, heads)))
    c.add("elementwise", S.mul(scores_per_head, heads))
    if _has_bias(node):
        c.add("bias", S.add(S.mul(rows_q, S.mul(2, d)), S.mul(rows_k, S.mul(2, d))))
    return c


@cost_rule(Op.MAXPOOL, Op.AVGPOOL)
def _pool(node, ins):
    window = S.prod(node.attrs["kernel"])
    per = S.add(window, -1) if node.op is Op.MAXPOOL else window
    return Cost().add("pool", S.mul(_out(node).numel(), per))


@cost_rule(Op.ADAPTIVE_AVGPOOL, Op.ADAPTIVE_MAXPOOL)
def _adaptive(node, ins):
    x = ins[0]
    out = _out(node)
    window: Size = 1
    for a_in, a_out in zip(x.axes, out.axes):
        if a_in.size != a_out.size:
            window = S.mul(window, S.ceildiv(a_in.size, a_out.size))
    per = S.add(window, -1) if node.op is Op.ADAPTIVE_MAXPOOL else window
    return Cost().add("pool", S.mul(out.numel(), per))


@cost_rule(Op.MEAN, Op.SUM, Op.AMAX)
def _reduce(node, ins):
    return Cost().add("elementwise", ins[0].numel())


@cost_rule(Op.BATCHNORM)
def _bn(node, ins):
    return Cost().add("norm", S.mul(2, ins[0].numel()))


@cost_rule(Op.LAYERNORM, Op.GROUPNORM)
def _ln(node, ins):
    per = 4
    if node.params:
        per += 2 if len([p for p in node.params if not p.buffer]) == 2 else 1
    return Cost().add("norm", S.mul(per, ins[0].numel()))


@cost_rule(Op.RMSNORM)
def _rms(node, ins):
    return Cost().add("norm", S.mul(4 if node.params else 3, ins[0].numel()))


@cost_rule(*ACTIVATIONS, Op.ADD, Op.SUB, Op.MUL, Op.SCALE)
def _elementwise(node, ins):
    return Cost().add("elementwise", _out(node).numel())


@cost_rule(Op.SOFTMAX)
def _softmax(node, ins):
    return Cost().add("softmax", S.mul(5, ins[0].numel()))


@cost_rule(Op.UPSAMPLE)
def _upsample(node, ins):
    if node.attrs["mode"] == "bilinear":
        return Cost().add("elementwise", S.mul(8, _out(node).numel()))
    return Cost()


@cost_rule(*VIEWS, Op.CONCAT, Op.EMBEDDING, Op.PIXEL_SHUFFLE, Op.PIXEL_UNSHUFFLE)
def _free(node, ins):
    return Cost()


def node_cost(node: Node, ins: list[TensorType]) -> Cost:
    return COST_RULES[node.op](node, ins)


def param_count(node: Node) -> tuple[Size, Size]:
    """(parameters, buffer elements) the node owns."""
    params = S.total(p.numel() for p in node.params if not p.buffer)
    buffers = S.total(p.numel() for p in node.params if p.buffer)
    return params, buffers


def bytes_moved(node: Node, ins: list[TensorType]) -> tuple[Size, Size]:
    """(bytes read, bytes written) by one op at inference, parameters read once."""
    if node.op in VIEWS:
        return 0, 0
    read = S.total(t.nbytes() for t in ins)
    read = S.add(read, S.mul(4, S.total(p.numel() for p in node.params)))
    out = node.type
    written = out.nbytes() if isinstance(out, (TensorType, TupleType)) else 0
    return read, written
