"""The one error type every sub-command raises for bad arguments or unreadable input.

It lives apart from callplatform.cli because `python -m callplatform.cli` runs that file as
`__main__`: a class defined there would exist twice (as `__main__.UsageError` and as
`callplatform.cli.UsageError`), and the commands' errors would escape `main` as tracebacks.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad arguments or unreadable input: exit code 2, message without traceback."""
