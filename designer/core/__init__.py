"""The design model, layer catalog, inference and validation. Pure Python: no Qt, no NumPy needed."""
