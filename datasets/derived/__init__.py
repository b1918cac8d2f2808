"""Derived data: everything computed from the stored records and kept to be fast (batch files, per-district
snapshots, the cache location and its lock).

Reads the store; never imports intake, the demo or operations.
"""
