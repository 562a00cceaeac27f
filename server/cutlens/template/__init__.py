"""Templates as data: the model (template, sample, variant), the sources that build it from
files (front matter, per-template config tables), sample IR nodes, variants and discovery."""
