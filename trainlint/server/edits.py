"""Text edits the editor actions make, as (start offset, end offset, new text) on the document's text.

Kept free of the protocol so that they are easy to test: the server converts offsets to LSP ranges.
"""
from __future__ import annotations

import io
import re
import tokenize

Edit = tuple[int, int, str]

# As the engine reads it: bare `noqa`, `noqa: TL001`, `noqa: E501, TL001` after a hash (case-insensitive).
_NOQA = re.compile(r"#\s*noqa(?![\w-])(?:\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_TOKENS = (tokenize.NEWLINE, tokenize.NL)


def noqa_edit(text: str, row: int, code: str) -> Edit | None:
    """The edit that adds `code` to the `# noqa` comment of 1-based line `row`: `  # noqa: CODE` appended
    at the end of the line, or `, CODE` added to a `# noqa: X` comment already there.

    None when a comment cannot go there without changing the code: the line ends inside a multi-line
    string or with a backslash continuation, or the file does not tokenize. Comments are found with
    Python's tokenizer, so a `#` inside a string is not mistaken for one."""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    if not 1 <= row <= len(starts):
        return None
    line_start = starts[row - 1]
    line_end = starts[row] if row < len(starts) else len(text)
    content = text[line_start:line_end].rstrip("\r\n")
    comment: tokenize.TokenInfo | None = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
            if token.start[0] > row:
                break
            if token.type in _LINE_BREAK_TOKENS or token.type == tokenize.ENDMARKER:
                continue
            if token.start[0] <= row < token.end[0]:
                return None  # the line ends inside this token (a triple-quoted string)
            if token.type == tokenize.COMMENT and token.start[0] == row:
                comment = token
    except (tokenize.TokenError, SyntaxError):
        return None
    if comment is None and content.rstrip().endswith("\\"):
        return None
    if comment is not None:
        match = _NOQA.search(comment.string)
        if match is not None:
            if match.group("codes") is None:
                return None  # a bare noqa comment already silences every code
            existing = {c.upper() for c in re.split(r"[,\s]+", match.group("codes")) if c}
            if code.upper() in existing:
                return None
            at = line_start + comment.start[1] + match.end("codes")
            return at, at, f", {code}"
    kept = len(content.rstrip(" \t"))
    return line_start + kept, line_start + len(content), f"  # noqa: {code}"


def replacement(before: str, after: str) -> Edit | None:
    """The smallest run of whole lines of `before` to replace so that it reads `after` (None if equal):
    a fix-all edit that leaves the rest of the document, and the editor's marks in it, alone."""
    if before == after:
        return None
    old, new = _LINE.findall(before), _LINE.findall(after)
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    start = sum(len(line) for line in old[:prefix])
    end = len(before) - sum(len(line) for line in old[len(old) - suffix:])
    return start, end, "".join(new[prefix:len(new) - suffix])


def apply(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (as an editor applies a WorkspaceEdit): for tests and fix-all checks."""
    for start, end, new_text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new_text + text[end:]
    return text
