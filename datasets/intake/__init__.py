"""From a user's file to an import: readers, cell parsing, validation, problem reports, import templates,
uploaded district boundaries, and the atomic import itself.

Everything a user supplies is hostile: it is read here, in a child process under limits.
"""
