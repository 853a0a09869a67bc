"""Count the lines of each seed-zoo example against its hand-written PyTorch reference (issue 11's goal:
an `.arch` file needs at most a third of the reference's lines).

A line counts when it is neither blank nor a comment; in Python, docstrings are left out too (a
docstring is prose, as a comment is). The reference of an example is the set of top-level classes and
functions listed for it in `REFERENCES` below, from tests/zoo_references.py or tests/test_spectral_zoo.py:
the model and every class or helper it builds or calls, nothing else (imports and the tests are
shared, so not counted). A class that another example's reference also uses (GE-ResNet-50's
bottleneck subclasses SE-ResNet-50's) counts for both, as it would be written in both files.

An `.arch` line holding only a closing brace counts, as the README's figures always did, although
Python closes its blocks by indentation; the table also shows the `.arch` lines without them, for
information (column `no }`).

Usage: `python3 tools/line_ratio.py` prints the table; `measure()` returns it as rows.

>>> rows = {r.file: r for r in measure()}
>>> rows["espcn.arch"].reference
9
"""

from __future__ import annotations

import ast
import dataclasses
import io
import pathlib
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[1]
ZOO = ROOT / "examples" / "zoo"
REFS = ROOT / "tests" / "zoo_references.py"
SPECTRAL = ROOT / "tests" / "test_spectral_zoo.py"

# example file -> (reference source, the top-level definitions its reference is made of)
REFERENCES: dict[str, tuple[pathlib.Path, tuple[str, ...]]] = {
    "mlp_mixer_b16.arch": (REFS, ("MixerBlock", "MLPMixer")),
    "convmixer_768_32.arch": (REFS, ("Residual", "conv_mixer")),
    "dcgan.arch": (REFS, ("dcgan_generator", "dcgan_discriminator")),
    "se_resnet50.arch": (REFS, ("SqueezeExcitation", "SEBottleneck", "SEResNet50")),
    "xception.arch": (REFS, ("SeparableConv", "XceptionBlock", "Xception")),
    "fasternet_t0.arch": (REFS, ("PartialConv", "FasterNetBlock", "FasterNet")),
    "inception_v3.arch": (REFS, ("BasicConv2d", "avg3", "InceptionA", "ReductionA", "InceptionB", "ReductionB",
                                 "InceptionC", "InceptionV3")),
    "ge_resnet50.arch": (REFS, ("SEBottleneck", "GatherExcite", "GEBottleneck", "GEResNet50")),
    "fcn_resnet50.arch": (REFS, ("DilatedBottleneck", "DilatedResNet50", "FCNResNet50")),
    "hornet_t.arch": (REFS, ("ChannelsFirstLayerNorm", "GnConv", "HorBlock", "HorNet")),
    "swin_stage.arch": (REFS, ("window_partition", "window_reverse", "WindowAttention", "shifted_window_mask",
                               "SwinBlock", "SwinStage")),
    "poolformer_s12.arch": (SPECTRAL, ("PoolFormerBlock", "PoolFormerS12")),
    "espcn.arch": (SPECTRAL, ("ESPCNRef",)),
    "hyena.arch": (SPECTRAL, ("Sin", "HyenaFilter", "HyenaOperator")),
    "fno2d.arch": (SPECTRAL, ("SpectralConv2d", "FNO2d")),
}


@dataclasses.dataclass(frozen=True)
class Row:
    file: str
    arch: int
    reference: int
    braces: int = 0   # of the `arch` lines, those holding only a closing brace

    @property
    def ratio(self) -> float:
        return self.arch / self.reference


def arch_lines(text: str) -> int:
    """Non-blank lines of an .arch source that are not `#` comments.

    >>> arch_lines("# a model\\n\\nsize batch = 1\\n  # note\\nblock B() {}\\n")
    2
    """
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def _docstring_lines(tree: ast.AST) -> set[int]:
    """The line numbers (1-based) that docstrings of modules, classes and functions occupy."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def brace_lines(text: str) -> int:
    """Lines of an .arch source that hold only a closing brace.

    >>> brace_lines("block B() {\\n  out x\\n}\\n")
    1
    """
    return sum(1 for line in text.splitlines() if line.strip() == "}")


def python_lines(source: str, names: tuple[str, ...]) -> int:
    """Non-blank, non-comment, non-docstring lines of the top-level definitions `names` in `source`.

    >>> python_lines('def f(x):\\n    \"\"\"Doc.\"\"\"\\n    # why\\n\\n    return x  # a comment\\n', ("f",))
    2
    """
    tree = ast.parse(source)
    defs = {node.name: node for node in tree.body
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
    missing = [n for n in names if n not in defs]
    if missing:
        raise KeyError(f"not defined at the top level: {', '.join(missing)}")
    docs = _docstring_lines(tree)
    code: set[int] = set()   # lines holding a token other than a comment or a line break
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER):
            code.update(range(tok.start[0], tok.end[0] + 1))
    total = 0
    for name in names:
        node = defs[name]
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        span = range(first, (node.end_lineno or node.lineno) + 1)
        total += sum(1 for n in span if n in code and n not in docs)
    return total


def measure() -> list[Row]:
    """One row per example of examples/zoo/, in the order of `REFERENCES` (the README's order)."""
    rows = []
    sources: dict[pathlib.Path, str] = {}
    for file, (path, names) in REFERENCES.items():
        source = sources.setdefault(path, path.read_text(encoding="utf-8"))
        text = (ZOO / file).read_text(encoding="utf-8")
        rows.append(Row(file, arch_lines(text), python_lines(source, names), brace_lines(text)))
    return rows


def main() -> int:
    rows = measure()
    unlisted = sorted({p.name for p in ZOO.glob("*.arch")} - set(REFERENCES))
    print(f"{'example':<24} {'.arch':>6} {'PyTorch':>8} {'ratio':>6} {'no }':>6} {'ratio':>6}")
    for r in rows:
        bare = r.arch - r.braces
        print(f"{r.file:<24} {r.arch:>6} {r.reference:>8} {r.ratio:>6.2f} {bare:>6} {bare / r.reference:>6.2f}")
    arch, reference = sum(r.arch for r in rows), sum(r.reference for r in rows)
    bare = arch - sum(r.braces for r in rows)
    print(f"{'all':<24} {arch:>6} {reference:>8} {arch / reference:>6.2f} {bare:>6} {bare / reference:>6.2f}")
    met = [r.file for r in rows if 3 * r.arch <= r.reference]
    print(f"at most a third: {len(met)} of {len(rows)}" + (f" ({', '.join(met)})" if met else ""))
    if unlisted:
        print(f"examples without a reference listed: {', '.join(unlisted)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
