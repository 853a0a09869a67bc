"""What a typed graph costs: per-layer rows, totals and the JSON reports."""
