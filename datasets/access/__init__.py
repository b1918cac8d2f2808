"""Who may do what: accounts, roles and district scope, sign-in sessions, the audit log, and the bulletin
documents administrators set.

Built on datasets.storage.
"""
