"""archc: a compiler for neural-network architectures with named axes.

    import archc
    model = archc.load("examples/resnet50.arch")
    model.flops().flops          # 8178368512

See README.md and docs/language.md.
"""

from archc.api import ArchError, BlockView, Model, limits, load, loads

__all__ = ["ArchError", "BlockView", "Model", "limits", "load", "loads"]
