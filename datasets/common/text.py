"""Text normalisation shared by header matching, district matching and value parsing."""

from __future__ import annotations

import re
import unicodedata

_BRACKET_UNIT = re.compile(r"[（(\[【][^）)\]】]*[）)\]】]\s*$")
_SPACES = re.compile(r"\s+")


def normalize(text: object) -> str:
    """NFKC (full-width → half-width), no whitespace at all, lower case."""
    if text is None:
        return ""
    return _SPACES.sub("", unicodedata.normalize("NFKC", str(text))).lower()


def normalize_header(text: object) -> str:
    """A header as matched against the data model: a trailing bracketed unit is ignored."""
    value = normalize(text)
    stripped = _BRACKET_UNIT.sub("", value)
    return stripped or value
