"""Reduce a failing input to a small one by deleting lines (ddmin), for turning a fuzz failure into a
regression test:

    python tests/fuzz/fuzz_reduce.py failing.py "did not settle"

keeps deleting chunks of lines (then single lines) as long as `fuzz_properties.check` still fails, or a
refused fix still says so, with a message containing the given words; prints the reduced input.
"""
from __future__ import annotations

import sys
from typing import Callable

from fuzz_properties import check


def reduce_lines(source: str, failing: Callable[[str], bool]) -> str:
    """The smallest subsequence of `source`'s lines (found greedily) for which `failing` still holds."""
    lines = source.split("\n")
    assert failing(source), "the input does not fail to begin with"
    chunk = max(1, len(lines) // 2)
    while chunk >= 1:
        start, changed = 0, False
        while start < len(lines):
            candidate = lines[:start] + lines[start + chunk:]
            if candidate and failing("\n".join(candidate)):
                lines, changed = candidate, True
            else:
                start += chunk
        if not changed:
            chunk //= 2
    return "\n".join(lines)


def fails_with(words: str) -> Callable[[str], bool]:
    def failing(source: str) -> bool:
        try:
            outcome = check(source, "reduce", unsafe=True)
        except AssertionError as error:
            return words in str(error)
        return outcome.fix_error is not None and words in outcome.fix_error
    return failing


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(reduce_lines(handle.read(), fails_with(sys.argv[2])))
