"""The Triton target: fused kernels from a Plan of the typed graph (not written yet; see issue 10).

It will read the graph's Plan (`archc.ir.plan`) and each op's Triton facet
(`OpDef.triton` in `archc.ops`), and emit a module with the PyTorch target's
class names and state_dict keys.
"""
