"""``cutlens capture``: run a program, record the matmul-family ops it runs, write them as a
samples file (:mod:`cutlens.template.captured`). ``run`` starts the program with the hook of
``boot/`` (the only code here that imports torch, inside the program's process), ``merge``
turns its records into named, weighted samples, ``write`` writes the file atomically."""
