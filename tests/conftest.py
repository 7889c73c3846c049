import inner_loop  # noqa: F401  (applies the XLA CPU flag before jax is imported)
