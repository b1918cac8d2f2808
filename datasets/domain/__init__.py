"""The data model and its rules: the canonical fields of the four kinds (schema), the counting vocabulary,
periods as month ranges and the working-day calendar (workdays).

Pure declarations and computations: no storage, no files of users, no SQL.
"""
