"""The Triton target: fused kernels for the entry's inference forward (generate.py, kernels.py)."""

from archc.codegen.triton.generate import TritonModule, generate

__all__ = ["generate", "TritonModule"]
