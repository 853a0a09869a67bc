"""Text from a .arch file reaches diagrams as text: well-formed XML, no markup, no control characters."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import archc

HOSTILE = 'bad\\x01\\x1b[31m<script>alert(1)</script><a xlink:href=\\"javascript:x\\">&amp;]]>'
SOURCE = ('block Inner(tag = "x") {\n  in x: [n = 2, c = 4]\n  y = relu(x)\n  out y\n}\n'
          'block B() {\n  in x: [n = 2, c = 4]\n  a = Inner(x, tag = "' + HOSTILE + '")\n  out a\n}\n')


@pytest.mark.parametrize("style", ["graph", "circuit"])
def test_a_string_argument_cannot_inject_markup_or_break_the_svg(style: str, tmp_path) -> None:
    out = tmp_path / "m.svg"
    archc.loads(SOURCE).render(str(out), style=style)
    text = out.read_text(encoding="utf-8")
    root = ET.fromstring(text)  # well-formed: no raw control character survived
    tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    assert not tags & {"script", "a", "foreignObject"}, tags
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)
    assert not any("javascript" in v for el in root.iter() for v in el.attrib.values())
