"""Text edits: a fix's spans as the one whole-line replacement that JSON, SARIF and the editor show."""
from __future__ import annotations

import bisect

from ..analysis.source import SourceText
from ..diagnostics import Location, TextEdit
from ..fixes import Span, apply_spans


def _line_starts(source: SourceText) -> list[int]:
    source.offset(1)  # builds the table
    return source._offsets  # noqa: SLF001 - the table SourceText keeps for exactly this


def text_edit(source: SourceText, spans: list[Span]) -> TextEdit:
    """The lines the spans touch, replaced by their new text (rows and columns 1-based, end exclusive, as
    ruff's edits are)."""
    starts = _line_starts(source)
    text = source.text
    lo = min(span.start for span in spans)
    hi = max(span.end for span in spans)
    first = bisect.bisect_right(starts, lo) - 1  # 0-based index of the line holding `lo`
    region_start = starts[first]
    k = bisect.bisect_left(starts, hi)
    if k < len(starts) and starts[k] == hi:
        region_end = hi  # ends at a line start: the line there is not touched
    else:
        region_end = starts[k] if k < len(starts) else len(text)
    end_index = bisect.bisect_left(starts, region_end)  # 0-based index of the line after the region
    shifted = [Span(s.start - region_start, s.end - region_start, s.text, s.order) for s in spans]
    content = apply_spans(text[region_start:region_end], shifted)
    return TextEdit(content, Location(first + 1, 1), Location(end_index + 1, 1))
