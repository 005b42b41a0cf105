"""The app layer: the `tenure` command line (`tenure.cli`) and the end-to-end demo (`tenure.demo`).

The only package that imports every stage (features, training, serving, monitoring); the stages
never import it.
"""
