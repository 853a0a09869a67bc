"""The PyTorch target: one readable `nn.Module` file per entry (see generate.py for the design)."""

from archc.codegen.torch.generate import Generated, generate, load_class, module_stem, write

__all__ = ["Generated", "generate", "load_class", "module_stem", "write"]
