"""Fused JAX Pallas kernels, installed as ``cpojax.kernels``."""
