"""The IR's text form: one line per node, stable across runs (goldens use it).

    %5 = conv(%4) @layer1.0.conv1 {map=chan->64, k=1, bias=false} : [batch=1, chan=64, h=56, w=56]  # a.arch:5
"""

from __future__ import annotations

import os
from typing import Any

from archc.ir.graph import Graph, Node
from archc.ops.registry import Op
from archc.shapes import sizes as S


def fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={fmt_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "none"
    return S.fmt(v)


def fmt_attrs(node: Node) -> str:
    parts = []
    for k, v in node.attrs.items():  # the op's arguments, in declared order; not what its rule derived
        if k == "map":
            axis, size, rename = v
            parts.append(f"map={axis}->{(rename + '=') if rename else ''}{S.fmt(size)}")
        elif k == "names":
            parts.append("names=" + ", ".join(f"{a}->{b}" for a, b in v))
        else:
            parts.append(f"{k}={fmt_value(v)}")
    return "{" + ", ".join(parts) + "}" if parts else ""


def fmt_buffers(node: Node) -> str:
    """The buffers an op owns besides its learned weights, with their dtypes (batchnorm's running
    statistics): `buffers{running_mean: [64], num_batches_tracked: i64[]}`. A non-persistent one
    (not in the state_dict) is marked `~`."""
    if node.op is Op.BUFFER:
        return ""  # the node is the buffer: its type says it
    parts = []
    for p in node.params:
        if p.buffer:
            dtype = "" if p.dtype == "f32" else p.dtype  # as tensor types print
            dims = ", ".join(S.fmt(d) for d in p.shape)
            parts.append(f"{'' if p.persistent else '~'}{p.name}: {dtype}[{dims}]")
    return "buffers{" + ", ".join(parts) + "}" if parts else ""


def print_node(node: Node) -> str:
    args = ", ".join(f"%{i}" for i in node.inputs)
    where = f" @{node.path}" if node.path else ""
    head = f"%{node.id} = {node.op.value}({args}){where}"
    for extra in (fmt_attrs(node), fmt_buffers(node)):
        if extra:
            head += " " + extra
    return f"{head} : {node.type}  # {os.path.basename(node.span.file)}:{node.span.line}"


def print_graph(g: Graph) -> str:
    """The whole graph: its signature, one line per node, and the outputs."""
    ins = ", ".join(f"{g.node(i).attrs['name']}: {g.node(i).type}" for i in g.inputs)
    lines = [f"graph {g.entry}({ins}) {{"]
    scope = None
    for n in g:
        if n.scope != scope:
            scope = n.scope
            lines.append(f"  // {scope or '(entry)'}")
        lines.append("  " + print_node(n))
    lines.append("  return " + ", ".join(f"%{i}" for i in g.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"
