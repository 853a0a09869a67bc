"""Primitive operations: one definition per op, holding every facet (see registry.py)."""
