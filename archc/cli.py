"""The `archc` command line: check and flops (torch-free by design).

Exit status: 0 ok, 1 an error in the user's input (printed as
`FILE:LINE:COL: error: message [code]` with the source line and a caret),
2 a usage error, 70 a bug in archc itself (one line; ARCHC_DEBUG=1 shows the
traceback). No input produces a Python traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from archc import api
from archc.diagnostics import ArchError, Diagnostic, SourceMap, render
from archc.ir import limits
from archc.ops.registry import Trait
from archc.shapes.types import DTYPES

FLOAT_DTYPES = [name for name, d in DTYPES.items() if d.is_float]
DEVICE_NAMES = ("a100", "h100", "h200")  # analysis/roofline.py's table (not imported here: check stays light)

CONVENTION_HELP = {
    "torch": "2 FLOPs per multiply-add of conv, linear and matmul (= torch FlopCounterMode); "
             "attention products reported apart",
    "macs": "1 per multiply-add of conv, linear, matmul and attention (fvcore/ptflops)",
    "full": "2 per multiply-add of every contraction plus elementwise, norm, softmax and pooling work",
}


INTERNAL_ERROR = 70  # EX_SOFTWARE: the fuzz tests treat it as a failure


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors: exit 2, one line, no traceback
        self.print_usage(sys.stderr)
        print(f"archc: usage error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _limit(text: str) -> tuple[str, int]:
    try:
        return limits.parse_limit(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_limit(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--limit", metavar="NAME=N", action="append", default=[], dest="limits", type=_limit,
                    help="raise (or lower) a budget, repeatable: " + "; ".join(
                        f"{k}: {v} (default {getattr(limits.Limits(), k):,})" for k, v in limits.HELP.items())
                    + " (docs/errors.md, Limits)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="archc", description="Compile .arch neural-network architectures: "
                "check shapes, count costs, generate code, draw diagrams.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("file", metavar="FILE", help=".arch file")
        sp.add_argument("--entry", metavar="NAME", help="block to compile (default: the file's entry)")
        sp.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], dest="sets",
                        help="give a free size or an entry parameter a value (repeatable)")
        sp.add_argument("--symbolic", action="store_true",
                        help="keep every free size symbolic (closed forms); figures are also "
                        "evaluated at the sizes' values")
        sp.add_argument("--json", action="store_true", help="machine-readable output (docs/json.md)")
        sp.add_argument("--dtype", choices=FLOAT_DTYPES, default=None,
                        help="floating-point dtype of values and parameters (default: the file's `dtype`, "
                        "else f32); integer and complex tensors keep theirs")
        _add_limit(sp)

    c = sub.add_parser("check", help="infer every shape; report constraints on free sizes")
    common(c)
    c.add_argument("--ir", action="store_true", help="print the typed graph (IR) instead of the table")
    c.add_argument("--depth", type=int, metavar="N", default=None,
                   help="one row per module at depth N (1 = top-level layers), in dataflow order")

    f = sub.add_parser("flops", help="parameters, FLOPs and bytes per layer and in total")
    common(f)
    f.add_argument("--convention", choices=sorted(CONVENTION_HELP), default="torch",
                   help="; ".join(f"{k}: {v}" for k, v in CONVENTION_HELP.items()))
    f.add_argument("--depth", type=int, metavar="N", default=None,
                   help="sum the layers below module depth N (1 = top-level layers)")
    f.add_argument("--no-layers", action="store_true", help="print totals only")
    f.add_argument("--fold-bn", action="store_true",
                   help="count the inference graph, with batchnorm folded into the conv or linear before it")
    f.add_argument("--memory", action="store_true",
                   help="per-layer bytes read and written and arithmetic intensity (full FLOPs per byte)")

    pl = sub.add_parser("plan", help="the kernels a fusion plan runs: bytes, FLOPs and a roofline time each")
    common(pl)
    pl.add_argument("--device", choices=sorted(DEVICE_NAMES), default="h100",
                    help="the device of the roofline estimate (figures: docs/costs.md)")
    pl.add_argument("--no-groups", action="store_true", help="print totals only")

    me = sub.add_parser("memory", help="training memory: parameters, gradients, optimizer state, the activations "
                        "backward keeps (per op), the peak")
    common(me)
    me.add_argument("--batch", type=int, metavar="N", default=None,
                    help="the batch size (the free size `batch`, else the first input's first axis)")
    me.add_argument("--optimizer", choices=["sgd", "momentum", "adam", "adamw"], default="adam",
                    help="whose state to count (torch.optim: SGD, SGD with momentum, Adam, AdamW; default adam)")
    me.add_argument("--checkpoint", metavar="BLOCK", default=None,
                    help="what activation checkpointing of BLOCK saves (a block path such as features.3, or a "
                    "block name: every instance)")
    me.add_argument("--depth", type=int, metavar="N", default=None,
                    help="one row per module at depth N (1 = top-level) instead of one per op")
    me.add_argument("--no-layers", action="store_true", help="print totals only")

    b = sub.add_parser("build", help="generate code: one PyTorch module per .arch file")
    b.add_argument("file", metavar="FILE", help=".arch file")
    b.add_argument("-o", "--out", metavar="DIR", required=True, help="directory to write the module into")
    b.add_argument("--target", choices=["torch", "triton"], default="torch",
                   help="what to generate (default: torch); triton: the same classes, whose inference forward "
                        "runs fused Triton kernels, written as STEM_triton.py")
    b.add_argument("--entry", metavar="NAME", help="block to compile (default: the file's entry)")
    b.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], dest="sets",
                   help="give a free size or an entry parameter a value (repeatable)")
    b.add_argument("--force", action="store_true", help="overwrite a file that archc did not generate")
    b.add_argument("--checks", action="store_true",
                   help="check named axis sizes at run time: each forward checks its inputs and output (ValueError)")
    b.add_argument("--fold-bn", action="store_true",
                   help="fold inference batchnorm into the conv or linear before it (loads unfolded state_dicts)")
    b.add_argument("--dtype", choices=FLOAT_DTYPES, default=None,
                   help="floating-point dtype of the module's parameters, buffers and values (default: the "
                   "file's `dtype`, else f32); integer, boolean and complex ones keep theirs")
    b.add_argument("--json", action="store_true",
                   help="print the written path, the entry class and its inputs as JSON (docs/json.md)")
    _add_limit(b)
    r = sub.add_parser("render", help="draw the architecture: SVG, or PNG/PDF/DOT by the file's extension")
    r.add_argument("file", metavar="FILE", help=".arch file")
    r.add_argument("-o", "--out", metavar="OUT", required=True, help="output file (.svg, .png, .pdf, .dot)")
    r.add_argument("--style", choices=["graph", "circuit", "roofline"], default="graph",
                   help="graph: graphviz dataflow graph; circuit: neural circuit diagram; roofline: each "
                   "kernel of the plan against the device's roofs (needs matplotlib: pip install 'archc[plot]')")
    r.add_argument("--device", choices=sorted(DEVICE_NAMES), default="h100",
                   help="roofline style: the device whose roofs are drawn (figures: docs/costs.md)")
    r.add_argument("--entry", metavar="NAME", help="block to draw (default: the file's entry)")
    r.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], dest="sets",
                   help="give a free size or an entry parameter a value (repeatable)")
    r.add_argument("--symbolic", action="store_true", help="label wires with symbolic sizes")
    r.add_argument("--force", action="store_true", help="replace a file that archc did not write (or a link)")
    r.add_argument("--expand", metavar="BLOCK", action="append", default=[],
                   help="draw every element of repetitions of this block (name or module path; repeatable)")
    r.add_argument("--depth", type=int, metavar="N", default=None,
                   help="draw modules at path depth N (1 = top-level) as single boxes")
    r.add_argument("--annotate", choices=["flops", "params", "bytes"], default=None,
                   help="per-op cost figures and a colour scale")
    r.add_argument("--define", metavar="BLOCK", default=None,
                   help="circuit style: draw BLOCK's definition (its first instance's ops) beside its 3-D box")
    r.add_argument("--conv", choices=["compact", "expanded"], default="compact",
                   help="circuit style: convolutions as one ★ box, or expanded (window wires contracted by L)")
    _add_limit(r)
    ls = sub.add_parser("lsp", help="a language server for editors, over stdin/stdout (needs pygls: "
                        "pip install 'archc[lsp]'; docs/editors.md)")
    _add_limit(ls)
    return p


def _parse_sets(items: list[str]) -> dict[str, int | float | bool | str]:
    """`--set` values: integers, floats, `true`/`false`, and otherwise strings (`act=relu` or `act="relu"`;
    an entry parameter holding a block takes a block's name, `unit=Wide`)."""
    out: dict[str, int | float | bool | str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name.isidentifier() or not text:
            raise ArchError([Diagnostic("error", "set", f"--set takes NAME=VALUE, got '{item}'")])
        value: int | float | bool | str
        if text in ("true", "false"):
            value = text == "true"
        elif len(text) >= 2 and text[0] == text[-1] == '"':
            value = text[1:-1]
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        if isinstance(value, str) and not value.isprintable():
            raise ArchError([Diagnostic("error", "set", f"--set {name}: the value holds a control character")])
        out[name] = value
    return out


def _unbreakable_output() -> None:
    """Where the terminal's encoding cannot show a character (an ASCII locale and `—`, `⌊`, `·`),
    print its escape instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
            reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    _unbreakable_output()
    args = _parser().parse_args(argv)
    sources = SourceMap()
    try:
        with api.rare_gc(), limits.limits(**dict(args.limits)):  # the whole command, within its budgets
            return _run(args, sources)
    except ArchError as e:
        unique = list(dict.fromkeys(e.diagnostics))  # a loop repeats the same error at the same place
        for d in unique:
            print(render(d, sources), file=sys.stderr)
        n = len([d for d in unique if d.severity == "error"])
        if n > 1:
            print(f"archc: {n} errors", file=sys.stderr)
        return 1
    except RecursionError:
        print(f"archc: error: {args.file} nests too deeply to compile [structure]", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in archc, never the user's fault: no traceback unless asked for
        if os.environ.get("ARCHC_DEBUG"):
            raise
        print(f"archc: internal error: {type(e).__name__}: {e}\n"
              "archc: this is a bug in archc; rerun with ARCHC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return INTERNAL_ERROR


def _run(args: argparse.Namespace, sources: SourceMap) -> int:
    if args.command == "lsp":
        return _lsp()
    sets = _parse_sets(args.sets)
    if args.command == "build":
        return _build(args, sets, sources)
    if args.command == "render":
        return _render(args, sets, sources)
    if args.command == "memory":
        return _memory(args, sets, sources)
    result = api.compile_file(args.file, entry=args.entry, sets=sets, symbolic=args.symbolic,
                              sources=sources, derive=args.command == "check", dtype=args.dtype)
    if args.command == "check":
        return _check(args, result)
    if args.command == "plan":
        return _plan(args, result)
    return _flops(args, result)


def _lsp() -> int:
    """The language server (archc/lsp.py) on stdin/stdout, until the client says exit."""
    try:
        import pygls  # noqa: F401
    except ImportError:
        raise ArchError([Diagnostic("error", "io", "archc lsp needs pygls (pip install 'archc[lsp]')")]) from None
    from archc import lsp
    return lsp.serve()


# ---- check ---------------------------------------------------------------------------


def _check(args: argparse.Namespace, res: api.Compiled) -> int:
    g = res.graph
    if args.ir and not args.json:
        from archc.ir.printer import print_graph
        sys.stdout.write(print_graph(g))
        return 0
    names = res.row_names
    if args.json:
        doc = {
            "entry": g.entry,
            "sizes": dict(g.sizes),
            "inputs": [{"name": g.node(i).attrs["name"], "type": str(g.node(i).type)} for i in g.inputs],
            "outputs": [str(g.node(i).type) for i in g.outputs],
            "nodes": [{"id": n.id, "name": names[n.id], "op": n.op.value, "path": n.path,
                       "inputs": list(n.inputs), "type": str(n.type),
                       "axes": _axes_json(n.type), "file": n.span.file, "line": n.span.line,
                       "col": n.span.col}
                      for n in g],
            "constraints": [{"text": d.text, "kind": d.kind, "why": d.why, "file": d.span.file,
                             "line": d.span.line, "col": d.span.col} for d in res.constraints],
        }
        print(json.dumps(doc, indent=1))
        return 0
    from archc.shapes.legend import Legend
    legend = Legend((n.type for n in g), reserved=g.sizes)
    out = [_header(res)]
    if args.depth is None:
        rows = [(names[n.id], n.op.value, legend.type_str(n.type), _where(n.span, args.file)) for n in g]
        out.append(table(("layer", "op", "output", "line"), rows, "lllr"))
    else:
        out.append(table(("module", "ops", "output", "line"),
                         _module_rows(g, max(args.depth, 0), legend, args.file), "lrlr"))
    out.append("outputs: " + ", ".join(legend.type_str(g.node(i).type) for i in g.outputs))
    if legend.rows:
        out.append("derived sizes:")
        out.append(table(("", ""), [(f"  {k} =", v) for k, v in legend.rows], "ll").split("\n", 1)[1])
    if res.constraints:
        out.append("constraints on free sizes:")
        for d in res.constraints:
            out.append(f"  {d.text}    ({d.span.file}:{d.span.line}: {d.why})")
    n_params = sum(1 for n in g if n.params)
    out.append(f"ok: {len(g)} nodes, {n_params} with parameters")
    print("\n".join(out))
    return 0


def _where(span: Any, root: str) -> str:
    """The line of a span; with the file's name when it is not the file being compiled."""
    if span.file == root:
        return str(span.line)
    name = span.file.strip("<>") if span.file.startswith("<") else os.path.basename(span.file)
    return f"{name}:{span.line}"


def _module_rows(g: Any, depth: int, legend: Any, root: str) -> list[tuple[str, ...]]:
    """Consecutive nodes of one module (at `depth`) as one row: its op count and output type."""
    from archc.analysis.report import module_key
    runs: list[tuple[str, list[Any]]] = []
    for n in g:
        key = module_key(n, depth) if n.op.value != "input" else n.attrs["name"]
        if runs and runs[-1][0] == key:
            runs[-1][1].append(n)
        else:
            runs.append((key, [n]))
    return [(key, str(len(ns)), legend.type_str(ns[-1].type), _where(ns[0].span, root)) for key, ns in runs]


def _axes_json(t: Any) -> Any:
    from archc.shapes.sizes import to_str
    from archc.shapes.types import TensorType
    if isinstance(t, TensorType):
        return [{"name": a.name, "size": to_str(a.size)} for a in t.axes]
    return [_axes_json(x) for x in t.items]


def _header(res: api.Compiled) -> str:
    g = res.graph
    sizes = ", ".join(f"{k}={'free' if v is None else v}" for k, v in g.sizes.items())
    ins = ", ".join(f"{g.node(i).attrs['name']}: {g.node(i).type}" for i in g.inputs)
    mode = " (symbolic)" if res.symbolic else ""
    return f"{g.entry}{mode} — {sizes or 'no free sizes'}\ninputs: {ins}"


# ---- flops ----------------------------------------------------------------------------


def _flops(args: argparse.Namespace, res: api.Compiled) -> int:
    from archc.analysis.report import analyze, group_rows, to_json
    from archc.shapes import sizes as S
    rep = analyze(api.fold_batchnorm(res.graph) if args.fold_bn else res.graph, args.convention)
    if args.json:
        print(json.dumps(to_json(rep, layers=not args.no_layers), indent=1))
        return 0

    def fig(x: Any) -> str:
        v = rep.value(x)
        if v is None or res.symbolic and not S.is_concrete(x):
            return S.fmt(x) if v is None else f"{S.fmt(x)} = {v:,}"
        return f"{v:,}"

    out = [_header(res)]
    rows: list[tuple[str, ...]] = []
    if not args.no_layers:
        if args.depth is not None:
            for key, group in group_rows(rep, max(args.depth, 0)):
                rows.append((key, f"{len(group)} ops", fig(S.total(r.params for r in group)),
                             fig(S.total(r.flops for r in group))))
            out.append(table(("module", "ops", "params", "FLOPs"), rows, "lrrr"))
        else:
            for r in rep.rows:
                if r.op == "input":
                    continue
                row: tuple[str, ...] = (r.name, r.op, r.out, fig(r.params), fig(r.flops))
                if args.memory:
                    full, moved = rep.value(r.full), rep.value(S.add(r.read, r.written))
                    ai = f"{full / moved:.2f}" if full is not None and moved else "-"
                    row += (fig(r.read), fig(r.written), ai)
                rows.append(row + (_where(r.node.span, args.file),))
            heads: tuple[str, ...] = ("layer", "op", "output", "params", "FLOPs")
            if args.memory:
                heads += ("read B", "written B", "FLOP/B")
            out.append(table(heads + ("line",), rows, "lll" + "r" * (len(heads) - 2)))
    free = [k for k, v in res.graph.sizes.items() if res.symbolic or v is None]
    args_txt = f"({', '.join(free)})" if free else ""
    out.append(f"params{args_txt} = {fig(rep.params)}")
    if rep.buffers != 0:
        out.append(f"buffers{args_txt} = {fig(rep.buffers)}")
    out.append(f"FLOPs{args_txt} = {fig(rep.flops)}    [{args.convention}: {CONVENTION_HELP[args.convention]}]")
    if rep.by_kind:  # empty when every FLOP count is zero (e.g. an axis of size 0)
        out.append("by kind (FLOPs; contractions at 2 per multiply-add):")
        kinds = [(f"  {k}", fig(v)) for k, v in rep.by_kind.items()]
        out.append(table(("", ""), kinds, "ll").split("\n", 1)[1])
    out.append(f"memory (bytes, {rep.graph.dtype}):")
    mem = [("  parameters", fig(rep.param_bytes))]
    if rep.buffers != 0:
        mem.append(("  buffers", fig(rep.buffer_bytes)))
    mem += [("  activations", fig(rep.activation_bytes)), ("  read", fig(rep.read)), ("  written", fig(rep.written))]
    out.append(table(("", ""), mem, "ll").split("\n", 1)[1])
    print("\n".join(out))
    return 0


# ---- memory ---------------------------------------------------------------------------


def _memory(args: argparse.Namespace, sets: dict[str, Any], sources: SourceMap) -> int:
    """Training memory (analysis/memory.py): as `archc flops`, without torch."""
    from archc.analysis.memory import groups, to_json
    from archc.dsl.loader import load
    from archc.shapes import sizes as S
    if args.batch is not None and args.batch < 1:
        raise ArchError([Diagnostic("error", "set", f"--batch {args.batch}: a batch size is at least 1")])
    model = api.Model(load(args.file, sources=sources), args.entry)
    mem = model.memory(args.batch, args.optimizer, args.dtype, args.checkpoint, args.symbolic, **sets)
    if args.json:
        print(json.dumps(to_json(mem, layers=not args.no_layers), indent=1))
        return 0

    def fig(x: Any) -> str:
        v = mem.value(x)
        if v is None or args.symbolic and not S.is_concrete(x):
            return S.fmt(x) if v is None else f"{S.fmt(x)} = {v:,}"
        return f"{v:,}"

    res = api.Compiled(mem.graph, args.symbolic, [])
    out = [_header(res)]
    if not args.no_layers:
        if args.depth is not None:
            mods = [(key, str(n), fig(b)) for key, n, b in groups(mem, max(args.depth, 1))]
            out.append(table(("module", "ops", "saved B"), mods, "lrr"))
        else:
            rows = [(r.name, r.op, fig(r.kept), fig(r.saved), _where(r.node.span, args.file))
                    for r in mem.ops if mem.value(r.kept) != 0 or args.symbolic and r.kept != 0]
            out.append(table(("layer", "op", "kept B", "saved B", "line"), rows, "llrrr"))
    master = ", fp32 master weights" if mem.master != 0 else ""
    out.append(f"training memory (bytes; compute {mem.dtype}{master}; {args.optimizer}):")
    lines = [("  parameters", fig(mem.params))]
    if mem.master != 0:
        lines.append(("  master weights (fp32)", fig(mem.master)))
    lines += [("  gradients", fig(mem.grads)), ("  optimizer state", fig(mem.optimizer_state))]
    if mem.buffers != 0:
        lines.append(("  buffers", fig(mem.buffers)))
    lines += [("  saved activations", fig(mem.saved)),
              ("  largest transient", f"{fig(mem.transient)}  ({mem.transient_op})"),
              ("  peak", fig(mem.peak))]
    out.append(table(("", ""), lines, "ll").split("\n", 1)[1])
    ck = mem.checkpoint
    if ck is not None:
        where = ck.paths[0] if len(ck.paths) == 1 else f"{len(ck.paths)} instances of {ck.block}"
        out.append(f"checkpointing {where}: saved activations {fig(ck.saved)} (saves {fig(ck.saving)}), "
                   f"peak {fig(ck.peak)}")
    out.append("peak = parameters + master + gradients + optimizer state + buffers + saved activations "
               "+ largest transient (docs/costs.md, Training memory)")
    print("\n".join(out))
    return 0


# ---- plan -----------------------------------------------------------------------------


def _plan(args: argparse.Namespace, res: api.Compiled) -> int:
    """The fusion plan's kernels (passes/plan.py) with their traffic and roofline time (analysis/roofline.py)."""
    from archc.analysis.roofline import DEVICES, plan_costs, seconds
    from archc.passes.plan import plan
    from archc.shapes import sizes as S
    g = res.graph
    costs = plan_costs(plan(g))
    device = DEVICES[args.device]
    values = {k: v for k, v in g.sizes.items() if v is not None}

    def num(x: Any) -> int | None:
        return S.evaluate(x, values)

    groups = costs.kernels
    times = [seconds(c, device, g.dtype, values) for c in groups]
    total_time = None if None in times else sum(t for t in times if t is not None)
    eager, fused = num(costs.eager_bytes), num(costs.plan_bytes)
    if args.json:
        doc = {
            "entry": g.entry, "dtype": g.dtype, "device": device.name, "sizes": dict(g.sizes),
            "eager_bytes": eager, "plan_bytes": fused, "saved_bytes": None if eager is None or fused is None
            else eager - fused, "eager_kernels": len([n for n in g if not n.op.has(Trait.VIEW)]),
            "plan_kernels": len(groups), "seconds": total_time,
            "groups": [{"name": c.name, "kind": c.kind, "ops": list(c.ops), "lines": list(c.lines),
                        "bytes_read": num(c.read), "bytes_written": num(c.written), "flops": num(c.flops),
                        "intensity": _ratio(num(c.flops), num(c.moved)), "seconds": t}
                       for c, t in zip(groups, times)],
        }
        print(json.dumps(doc, indent=1))
        return 0
    out = [_header(res)]
    if not args.no_groups:
        rows = [(c.name, c.kind, "+".join(c.ops), _fig(num(c.read)), _fig(num(c.written)), _fig(num(c.flops)),
                 _fmt_ratio(_ratio(num(c.flops), num(c.moved))), _fmt_time(t), " ".join(c.lines))
                for c, t in zip(groups, times)]
        out.append(table(("kernel", "kind", "ops", "read B", "written B", "FLOPs", "FLOP/B", "time", "lines"),
                         rows, "lllrrrrrl"))
    out.append(f"kernels: {len(groups)} planned (one per op eagerly: "
               f"{len([n for n in g if not n.op.has(Trait.VIEW)])})")
    out.append(f"memory traffic ({g.dtype}): eager {_fig(eager, costs.eager_bytes)} B, "
               f"planned {_fig(fused, costs.plan_bytes)} B"
               + ("" if eager is None or fused is None or not eager
                  else f", saved {_fig(eager - fused)} B ({(eager - fused) / eager:.1%})"))
    out.append(f"roofline on {device.name}: {_fmt_time(total_time)}  [{device.source}]")
    print("\n".join(out))
    return 0


def _ratio(a: int | None, b: int | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _fig(x: int | None, expr: Any = None) -> str:
    """An integer with thousands separators; the expression in the free sizes when it has no value."""
    if x is None:
        from archc.shapes import sizes as S
        return "?" if expr is None else S.fmt(expr)
    return f"{x:,}"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "? (free sizes)"
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


# ---- build ----------------------------------------------------------------------------


def _build(args: argparse.Namespace, sets: dict[str, Any], sources: SourceMap) -> int:
    """Check the file as `archc check` does, then generate and write the module."""
    from archc.codegen import torch as codegen_torch  # only here: check and flops never load codegen
    from archc.dsl.loader import load
    from archc.dsl.templates import Templates
    program = load(args.file, sources=sources)
    api.compile_program(program, args.entry, sets, dtype=args.dtype)
    stem = codegen_torch.module_stem(args.file)
    if args.target == "triton":
        if args.checks or args.fold_bn:
            raise ArchError([Diagnostic("error", "io", "--checks and --fold-bn are options of --target torch "
                                        "(the Triton target fuses batchnorm into the kernel before it)")])
        from archc.codegen.triton import generate as codegen_triton
        graph = api.plan_graph(program, args.entry, sets, args.dtype)
        tm = codegen_triton(Templates(program, args.entry, sets, args.dtype), graph)
        gen = tm.generated
        stem += "_triton"
    else:
        gen = codegen_torch.generate(Templates(program, args.entry, sets, args.dtype), checks=args.checks,
                                     fold_bn=args.fold_bn)
    path = codegen_torch.write(gen, args.out, stem, force=args.force, inputs=list(sources.texts))
    if gen.built_for is not None:
        print(render(gen.built_for, sources), file=sys.stderr)
    if args.json:
        doc = {"target": args.target, "path": path, "entry": gen.entry_class, "classes": gen.classes,
               "inputs": gen.inputs, "checks": args.checks, "fold_bn": args.fold_bn}
        if args.target == "triton":
            doc.update(kernels=tm.kernels, distinct_kernels=tm.distinct_kernels, torch_ops=tm.torch_ops)
        print(json.dumps(doc, indent=1))
    else:
        ins = ", ".join(f"{i['name']}: {i['type']}" for i in gen.inputs)
        kernels = (f", {tm.kernels} fused kernel launches ({tm.distinct_kernels} distinct Triton kernels), "
                   f"{tm.torch_ops} torch ops" if args.target == "triton" else "")
        print(f"wrote {path}: class {gen.entry_class}({ins}), {len(gen.classes)} classes{kernels}")
    return 0


# ---- render ---------------------------------------------------------------------------


def _render(args: argparse.Namespace, sets: dict[str, Any], sources: SourceMap) -> int:
    """Check the file, then draw it in the chosen style (codegen/diagrams/: graph.py, circuit.py, roofline.py)."""
    res = api.compile_file(args.file, entry=args.entry, sets=sets, symbolic=args.symbolic, sources=sources)
    ext = os.path.splitext(args.out)[1].lower()
    if args.style == "roofline":
        if args.define is not None or args.conv != "compact" or args.expand or args.depth is not None \
                or args.annotate is not None:
            raise ArchError([Diagnostic("error", "io", "--define, --conv, --expand, --depth and --annotate "
                                        "are options of the graph and circuit styles")])
        from archc.codegen.diagrams import roofline
        rl = roofline.render(res.graph, args.out, device=args.device, force=args.force, inputs=list(sources.texts))
        print(f"wrote {args.out}: {rl.summary}")
        return 0
    if args.style == "graph":
        from archc.codegen.diagrams import graph
        if args.define is not None or args.conv != "compact":
            raise ArchError([Diagnostic("error", "io", "--define and --conv are options of --style circuit")])
        if ext not in (".svg", ".png", ".pdf", ".dot", ".gv"):
            raise ArchError([Diagnostic("error", "io", f"cannot write '{ext or args.out}': "
                                        "use .svg, .png, .pdf or .dot")])
        if ext not in (".dot", ".gv") and not graph.have_dot():
            raise ArchError([Diagnostic("error", "io", "the graph style needs Graphviz's `dot` "
                                        "for SVG/PNG/PDF (apt-get install graphviz); .dot output works without it")])
        d = graph.render(res.graph, args.out, force=args.force, inputs=list(sources.texts), expand=args.expand,
                         depth=args.depth, annotate=args.annotate)
        print(f"wrote {args.out}: {d.nodes} nodes, {d.edges} edges"
              + "".join(f", {p} ×{n}" for p, n in d.collapsed))
        return 0
    import importlib.util
    if importlib.util.find_spec("archc.codegen.diagrams.circuit") is None:
        raise ArchError([Diagnostic("error", "io", "the circuit style is not available yet; use --style graph")])
    from archc.codegen.diagrams import circuit
    layout = circuit.render(res.graph, args.out, expand=args.expand, depth=args.depth, annotate=args.annotate,
                            define=args.define, conv=args.conv, force=args.force, inputs=list(sources.texts))
    print(f"wrote {args.out}: {layout.summary}")
    return 0


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """Plain aligned columns; 'l'/'r' per column."""
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in rows])


def entry_point() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry_point()
