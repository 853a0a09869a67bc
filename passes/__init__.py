"""Transformations of the typed graph (Graph -> Graph) and the grouping of its nodes into kernels (Graph -> Plan).

Importing the package registers every pass in `PASSES` (base.py has the API).
"""

from archc.passes.base import PASSES, PROPERTIES, Pass, PassError, graph_pass, run
from archc.passes.dtype import cast_floats
from archc.passes.dve import dead_values
from archc.passes.fold_bn import drop_folded, fold_batchnorm
from archc.passes.sizes import bind_sizes

__all__ = ["PASSES", "PROPERTIES", "Pass", "PassError", "bind_sizes", "cast_floats", "dead_values", "drop_folded",
           "fold_batchnorm", "graph_pass", "run"]
