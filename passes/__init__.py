"""Transformations of the typed graph (Graph -> Graph) and the grouping of its nodes into kernels (Graph -> Plan)."""
