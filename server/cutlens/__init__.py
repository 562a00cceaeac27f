"""cutlens: render, check, benchmark and edit Jinja-templated CUDA/CUTLASS kernels."""

__version__ = "0.1.0"
