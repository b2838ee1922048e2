"""The one writer of turnserver.conf: every line it emits is read by coturn exactly as written.

A value that coturn would read differently (see rules/coturn_conf.py) is never written. The
directive is left out, which fails closed (no realm override, no user, no opened range), and a
comment names the rule that blocks the platform; the rules engine reports the same value with
that rule id, so a platform whose config holds such a comment is never applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from callplatform.rules.coturn_conf import line_problem

_DIRECTIVE = re.compile(r"^[a-z][a-z0-9_-]*$")


class UnsafeLine(ValueError):
    """A line the writer itself built would not survive coturn's parser (a bug, not bad input)."""


class ConfWriter:
    def __init__(self, header: str) -> None:
        self._lines: list[str] = []
        self.refused: list[str] = []  # directive names left out
        self.comment(header)

    def comment(self, text: str) -> None:
        printable = "".join(ch if " " <= ch <= "~" and ch != "\\" else "?" for ch in text)
        self._append(("# " + printable)[:200].rstrip())

    def flag(self, directive: str) -> None:
        self._append(self._name(directive))

    def number(self, directive: str, value: int) -> None:
        self._append(f"{self._name(directive)}={int(value)}")

    def value(self, directive: str, value: str, problem: Callable[[str], str | None], rule: str) -> bool:
        """Write `directive=value` if `problem(value)` is None; else leave it out (see module doc)."""
        if problem(value) is None:
            line = f"{self._name(directive)}={value}"
            if line_problem(line) is None:
                self._append(line)
                return True
        self.refused.append(directive)
        self.comment(f"{directive} refused ({rule}): the value would not be read as written.")
        return False

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"

    def _name(self, directive: str) -> str:
        if _DIRECTIVE.fullmatch(directive) is None:
            raise UnsafeLine(f"not a directive name: {directive!r}")
        return directive

    def _append(self, line: str) -> None:
        problem = line_problem(line)
        if problem is not None:
            raise UnsafeLine(f"a turnserver.conf line {problem}")
        self._lines.append(line)
