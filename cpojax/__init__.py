"""cpojax: co-packaged optics link and manufacturing-yield simulation in JAX."""

__version__ = "0.1.0"
