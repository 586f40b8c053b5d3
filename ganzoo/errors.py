from __future__ import annotations


class GanzooError(Exception):
    """A problem the user can fix (bad input, missing data). The CLI prints it as one line, exit 2."""
