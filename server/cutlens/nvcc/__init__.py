"""nvcc: the toolchain and its flags, the compile pool and build cache, nvcc's output parser,
and the mapping of what nvcc says back onto template lines."""
