"""A runaway recursion prints each call that repeats once, with a count (tests/errors/recursion.arch
has the expected diagnostics inline); it printed the same note 64 times before (issue 11)."""

from __future__ import annotations

import pytest

import archc
from archc.diagnostics import ArchError

SELF = ("block A(n) {\n  in x: [c = 4]\n  a = A(x, n + 1)\n  out a\n}\n"
        "block Net() {\n  in x: [c = 4]\n  a = A(x, 0)\n  out a\n}\n")


@pytest.mark.parametrize("depth", [5, 64, 100])
def test_one_note_per_call_whatever_the_depth(depth: int) -> None:
    with archc.api.limits(depth=depth), pytest.raises(ArchError) as err:
        archc.loads(SELF).check()
    (d,) = err.value.diagnostics
    notes = [text for text, span in d.notes if span is not None]
    assert notes == [f"in block 'A' called here ({depth - 1} times, each call inside the one before)",
                     "in block 'A' called here"]
    assert [span.line for _, span in d.notes if span is not None] == [3, 8]


def test_a_call_that_is_no_recursion_is_not_folded() -> None:
    src = ("block Leaf() {\n  in x: [c = 4]\n  y = linear(x, c -> 5)\n  out y + x\n}\n"
           "block Mid() {\n  in x: [c = 4]\n  l = Leaf(x)\n  out l\n}\n"
           "block Net() {\n  in x: [c = 4]\n  m = Mid(x)\n  out m\n}\n")
    with pytest.raises(ArchError) as err:
        archc.loads(src).check()
    (d,) = err.value.diagnostics
    assert [t for t, _ in d.notes] == ["in block 'Leaf' called here", "in block 'Mid' called here"]
