"""The default, human format: each finding with its source excerpt and fix hint, then a summary.

    bug.py:6:5: TL001 [*] `opt`'s gradients are never cleared in this loop: ...
      |
    5 |     loss = model(torch.randn(2, 4)).sum()
    6 |     loss.backward()
      |     ^^^^^^^^^^^^^^^ TL001
    7 |     opt.step()
      |
      = help: Call `opt.zero_grad()` at the start of each iteration

    Found 1 finding (1 fixable with --fix)

Colour only on a terminal, and never with NO_COLOR: rich decides both from the stream and environment.
"""
from __future__ import annotations

import os

from rich.console import Console
from rich.text import Text

from ..diagnostics import FileResult, Finding
from . import snippet
from .summary import is_fixable, summary_line

PATH_STYLE = "bold"
CODE_STYLE = "bold red"
FIXABLE_STYLE = "cyan"
HELP_STYLE = "bold cyan"


def console_for(stream) -> Console:
    """A console that prints text as given: no markup, emoji or highlighting of numbers and paths,
    no wrapping at the terminal width (lines must stay greppable), no styles at all under NO_COLOR."""
    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(file=stream, markup=False, emoji=False, highlight=False, soft_wrap=True,
                   color_system=None if no_color else "auto")


def header(finding: Finding, fixable: bool) -> Text:
    where = f"{finding.filename}:cell {finding.cell}" if finding.cell else finding.filename
    text = Text()
    text.append(where, style=PATH_STYLE)
    text.append(f":{finding.location.row}:{finding.location.column}: ")
    text.append(finding.code, style=CODE_STYLE)
    if fixable:
        text.append(" [*]", style=FIXABLE_STYLE)
    text.append(f" {finding.message}")
    return text


def help_text(finding: Finding) -> Text | None:
    if finding.fix is None:
        return None
    text = Text("= ")
    text.append("help", style=HELP_STYLE)
    text.append(f": {finding.fix.message}")
    return text


def write(report, findings: list[Finding], results: list[FileResult]) -> None:
    console = console_for(report.out)
    sources = snippet.SourceLines(results)
    for finding in findings:
        block = header(finding, is_fixable(finding, report))
        hint = help_text(finding)
        # A notebook finding's rows count in its cell: the excerpt is of the cell's source, not the JSON.
        lines = sources.cell(finding.filename, finding.cell) if finding.cell else sources.get(finding.filename)
        excerpt = snippet.render(finding, lines, hint) if lines is not None else None
        if excerpt is not None:
            block.append("\n")
            block.append_text(excerpt)
        elif hint is not None:
            block.append("\n  ")
            block.append_text(hint)
        console.print(block)
        console.print()
    if not report.quiet:
        console.print(summary_line(report, findings, results))
