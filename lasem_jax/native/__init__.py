"""Optional native CPU kernels: oneDNN convolutions through XLA's FFI, else plain JAX."""
