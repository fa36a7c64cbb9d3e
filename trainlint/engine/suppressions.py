"""`# noqa` comments: `# noqa`, `# noqa: TL001`, `# noqa: TL001, TL004` on a line, and `# trainlint: noqa` (or
`# trainlint: noqa: TL001`) alone on a line for the whole file, as flake8 and ruff spell them."""
from __future__ import annotations

import re

from ..analysis.source import split_lines

_NOQA = re.compile(r"#\s*noqa(?![\w-])(?:\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_FILE_NOQA = re.compile(r"^[ \t\f]*#[ \t]*trainlint[ \t]*:[ \t]*noqa(?![\w-])"
                        r"(?:[ \t]*:[ \t]*(?P<codes>[A-Z]+[0-9]+(?:[, \t]+[A-Z]+[0-9]+)*))?[ \t]*\r?$",
                        re.IGNORECASE | re.MULTILINE)


_ANY_NOQA = re.compile("noqa", re.IGNORECASE)


def _codes(text: str | None) -> set[str] | None:
    return {c.upper() for c in re.split(r"[,\s]+", text) if c} if text else None


class Suppressions:
    def __init__(self, source: str) -> None:
        self.file_codes: set[str] | None = None
        self.file_all = False
        if _ANY_NOQA.search(source):
            for match in _FILE_NOQA.finditer(source):
                codes = _codes(match.group("codes"))
                if codes is None:
                    self.file_all = True
                else:
                    self.file_codes = (self.file_codes or set()) | codes
            self.lines: list[str] | None = split_lines(source)  # rows as Python counts them
        else:
            self.lines = None  # no noqa anywhere: nothing is suppressed

    def suppressed(self, code: str, row: int) -> bool:
        if self.lines is None:
            return False
        if self.file_all or (self.file_codes and code in self.file_codes):
            return True
        if 0 < row <= len(self.lines) and "#" in self.lines[row - 1]:
            match = _NOQA.search(self.lines[row - 1])
            if match is not None:
                codes = _codes(match.group("codes"))
                return codes is None or code in codes
        return False
