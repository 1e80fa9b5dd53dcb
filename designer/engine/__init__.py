"""The NumPy engine: ops (im2col convolution, pooling, norms, ...), weights, the executor. No Qt."""
