"""The typed graph: archc's one IR, its printer, its lint, and the Plan of kernels."""
