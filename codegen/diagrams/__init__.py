"""Diagrams drawn from the typed graph: the graph style (graphviz) and the circuit style (SVG)."""
