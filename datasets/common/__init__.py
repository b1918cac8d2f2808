"""Plumbing every job of datasets/ uses and that knows nothing of the hall data: the deployment settings,
system faults explained in Chinese, the one writer of spreadsheet files, child processes under limits,
text normalisation.

Imports nothing else of the project.
"""
