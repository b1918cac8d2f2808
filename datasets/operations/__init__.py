"""What an administrator or the command line does: the shared CLI plumbing of ``python -m datasets`` and
``python -m metrics``, and the administration actions (with their permission checks and audit).

The top of datasets/: may import every other sub-package.
"""
