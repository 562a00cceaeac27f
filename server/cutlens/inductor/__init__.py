"""The Inductor bridge: PyTorch Inductor's own CUTLASS GEMM templates rendered by Inductor's
classes inside the render-driver worker (it imports torch), every line mapped to
``gemm_template.py``, compiled with Inductor's own nvcc flags, benchmarked through
Inductor's kernel ABI; and Inductor's own autotuning, for comparison on a GPU."""
