"""Elaboration of `seq(x) { ... }`: numbered and labelled steps, nested
sequences, repetition and conditional steps, named like nn.Sequential children.

Part of the `Elaborator` (dsl/elaborate.py), a mixin over `values.State`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archc.diagnostics import Span
from archc.dsl.values import (
    POISON,
    TV,
    Abort,
    BlockRef,
    Frame,
    Poison,
    State,
    join,
)
from archc.grammar import ast
from archc.ir.graph import ModuleInfo
from archc.shapes import sizes as S
from archc.shapes.types import TensorType


class Sequences(State):
    if TYPE_CHECKING:  # methods of the Elaborator's other parts that this part calls
        def ev(self, e: ast.Expr, frame: Frame, path: str | None = None, list_path: str | None = None) -> Any: ...
        def truth(self, v: Any, span: Span) -> bool: ...
        def _call(self, call: ast.Call, frame: Frame, implicit: Any, path: str | None,
                  seq_step: bool = False) -> Any: ...
        def _iterate(self, frame: Frame, loop: ast.For | ast.ForStep) -> Sequence[Any]: ...
        def _claim(self, frame: Frame, path: str, span: Span) -> None: ...
        def _parent_of(self, path: str) -> str | None: ...
        def _take_repeat(self) -> tuple[str, int, int, int] | None: ...

    # ---- sequences ----------------------------------------------------------------------------------

    def _seq(self, e: ast.SeqExpr, frame: Frame, path: str | None) -> Any:
        if path is None:
            self.bag.error("structure", "a seq needs a name: write `name = seq(x) { ... }`", e.span)
            raise Abort
        cur = self.ev(e.input, frame)
        if isinstance(cur, Poison):
            return cur
        self._claim(frame, path, e.span)
        self.graph.add_module(ModuleInfo(path, "seq", "", {}, e.span, self._parent_of(path),
                                         repeat=self._take_repeat()))
        return self._steps(e.steps, cur, path, [0], frame)

    def _is_block_call(self, e: ast.Expr, frame: Frame) -> bool:
        """`out Block(...)`: an unnamed block call in `out` names its layers under the
        calling block itself, as a subclass inherits its parent's attributes
        (`ResNet50` is `ResNet([3, 4, 6, 3])`, with ResNet's state_dict keys)."""
        return isinstance(e, ast.Call) and (e.func in frame.file.namespace
                                            or isinstance(frame.env.get(e.func), BlockRef))

    def _out_seq(self, e: ast.SeqExpr, frame: Frame, counter: list[int]) -> Any:
        """`out seq(x) { ... }`: the steps are numbered under the block itself, as the
        children of an nn.Sequential subclass are (torchvision's MLPBlock,
        Conv2dNormActivation): `mlp = MLP(...)` owns mlp.0, mlp.1, ..."""
        cur = self.ev(e.input, frame)
        if isinstance(cur, Poison):
            return cur
        return self._steps(e.steps, cur, frame.path, counter, frame)

    def _steps(self, steps: tuple[ast.Step, ...], cur: Any, seq_path: str, counter: list[int], frame: Frame) -> Any:
        for st in steps:
            if isinstance(cur, Poison):
                return cur
            try:
                cur = self._step(st, cur, seq_path, counter, frame)
            except Abort:
                return POISON
        return cur

    def _step(self, st: Any, cur: Any, seq_path: str, counter: list[int], frame: Frame) -> Any:
        if isinstance(st, ast.ForStep):
            out = cur
            steps = self._iterate(frame, st)
            for i in steps:
                frame.env[st.var] = i
                # a range's repeats may become a loop in the generated constructor; a list's items stay apart
                self._repeat_step((st.var, i, steps.start, steps.stop) if isinstance(steps, range) else None)
                out = self._steps(st.steps, out, seq_path, counter, frame)
                self._repeat_step(None)
            return out
        if isinstance(st, ast.IfStep):
            chosen = st.then if self.truth(self.ev(st.test, frame), st.test.span) else st.orelse
            return self._steps(chosen, cur, seq_path, counter, frame)
        label = self._label(st.label, frame, st.span) if st.label is not None else None
        if label is None:
            label = str(counter[0])
            counter[0] += 1
        path = join(seq_path, label)
        if isinstance(st, ast.SeqStep):
            self._claim(frame, path, st.span)
            self.graph.add_module(ModuleInfo(path, "seq", "", {}, st.span, self._parent_of(path),
                                             repeat=self._take_repeat()))
            return self._steps(st.steps, cur, path, [0], frame)
        assert isinstance(st, ast.CallStep)
        out = self._call(st.call, frame, cur, path, seq_step=True)
        if isinstance(out, TV) and not isinstance(self.type_of(out), TensorType):
            self.bag.error("type", "a seq step must give one tensor", st.span)
            raise Abort
        if not isinstance(out, (TV, Poison)):
            self.bag.error("type", f"a seq step must give one tensor, got {self._kind(out)}", st.span)
            raise Abort
        return out

    def _label(self, template: str, frame: Frame, span: Span, what: str = "step name") -> str:
        """A name template's text: `{i}` is a variable's value (a whole number or a string),
        `{names[i]}` an element of a list (Inception's `"Mixed_{names[i]}"`)."""
        def value(name: str) -> Any:
            if name.isdigit():
                return int(name)
            return frame.env.get(name)

        def sub(m: re.Match[str]) -> str:
            v = value(m.group(1))
            if m.group(2) is not None:
                i = value(m.group(2))
                ok = isinstance(v, list) and S.is_concrete(i) and -len(v) <= int(i) < len(v)
                v = v[int(i)] if ok else None
            if isinstance(v, str) and v:
                return v
            if v is None or isinstance(v, bool) or not S.is_concrete(v):
                self.bag.error("name", f"'{m.group(0)}' in a layer name must be a loop variable, another whole "
                               "number or a string", span)
                raise Abort
            return str(int(v))
        label = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\[([A-Za-z_][A-Za-z0-9_]*|[0-9]+)\])?\}", sub, template)
        left = re.search(r"\{[^}]*\}", label)
        if left:
            self.bag.error("name", f"'{left.group(0)}' in a {what}: braces hold a variable, or a list's element "
                           "at a variable or a number (`{names[i]}`)", span)
            raise Abort
        if not re.fullmatch(r"[A-Za-z0-9_-]+", label):  # '-' as in real checkpoints' keys
            self.bag.error("name", f"{what} '{label}' must be letters, digits, _ and -", span)
            raise Abort
        return label

    def _repeat_step(self, info: tuple[str, int, int, int] | None) -> None:
        """Mark the modules the next step creates as element `info` of a repetition."""
        self.repeat = info
