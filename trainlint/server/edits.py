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


class Comments:
    """Where a comment may go, from one pass of Python's tokenizer over the text (a `#` inside a string
    is not a comment): each line's comment token, and the lines that end inside a token (a line of a
    triple-quoted string). `ok` is False when the text does not tokenize."""

    def __init__(self, text: str) -> None:
        self.comments: dict[int, tokenize.TokenInfo] = {}
        self.continued: set[int] = set()
        self.ok = True
        try:
            for token in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
                if token.type in _LINE_BREAK_TOKENS or token.type == tokenize.ENDMARKER:
                    continue
                if token.type == tokenize.COMMENT:
                    self.comments[token.start[0]] = token
                elif token.end[0] > token.start[0]:
                    self.continued.update(range(token.start[0], token.end[0]))
        except (tokenize.TokenError, SyntaxError):
            self.ok = False


def noqa_edit(text: str, row: int, code: str, comments: Comments | None = None) -> Edit | None:
    """The edit that adds `code` to the `# noqa` comment of 1-based line `row`: `  # noqa: CODE` appended
    at the end of the line, or `, CODE` added to a `# noqa: X` comment already there.

    None when a comment cannot go there without changing the code: the line ends inside a multi-line
    string or with a backslash continuation, or the file does not tokenize. Pass `comments` (of the
    same text) to answer for many lines with one pass of the tokenizer."""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    if not 1 <= row <= len(starts):
        return None
    comments = comments or Comments(text)
    if not comments.ok or row in comments.continued:
        return None
    line_start = starts[row - 1]
    line_end = starts[row] if row < len(starts) else len(text)
    content = text[line_start:line_end].rstrip("\r\n")
    comment = comments.comments.get(row)
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
