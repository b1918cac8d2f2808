"""A corpus of bad (and a few tricky but valid) upload files, generated on demand (see corpus.py)."""
