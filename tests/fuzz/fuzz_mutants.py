"""Line mutants of the repository's own training scripts (fixtures/**/*.py, examples/*.py).

Real scripts, broken the way an edit in progress breaks them: a line deleted, duplicated, swapped with the
next, dedented or indented, an identifier replaced by another of the file, a `break` / `continue` /
`return` inserted, a line (with its block) wrapped in `if x:`. Most mutants still parse, so the rules run
on training loops whose structure is almost, but not quite, the usual one.

Every mutant has a stable label (`file:row:operator[:detail]`), so a failure names the mutant to reduce.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240611
OPERATORS = ("delete", "duplicate", "swap", "dedent", "indent", "rename", "break", "continue", "return", "wrap-if")
_IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_KEYWORDS = frozenset(__import__("keyword").kwlist)


@dataclass(frozen=True)
class Site:
    """Where a mutant is made: a file, a row (1-based) and an operator."""

    path: Path
    row: int
    operator: str


@dataclass(frozen=True)
class Mutant:
    label: str
    source: str


def scripts() -> list[Path]:
    return sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "examples").glob("*.py"))


def sites(paths: list[Path]) -> list[Site]:
    """Every (file, non-blank row, operator)."""
    found = []
    for path in paths:
        lines = path.read_text().split("\n")
        for row, line in enumerate(lines, start=1):
            if line.strip():
                found.extend(Site(path, row, operator) for operator in OPERATORS)
    return found


def sample(count: int, seed: int = SEED) -> list[Mutant]:
    """`count` mutants (all of them if there are fewer sites), the same ones on every run."""
    all_sites = sites(scripts())
    rng = random.Random(seed)
    chosen = all_sites if count >= len(all_sites) else rng.sample(all_sites, count)
    mutants = []
    for site in chosen:
        mutant = mutate(site, random.Random(f"{seed}:{site.path.name}:{site.row}:{site.operator}"))
        if mutant is not None:
            mutants.append(mutant)
    return mutants


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def mutate(site: Site, rng: random.Random) -> Mutant | None:
    """The mutant at `site`, or None when the operator does not apply there (nothing to dedent...)."""
    text = site.path.read_text()
    lines = text.split("\n")
    i = site.row - 1
    line = lines[i]
    detail = ""
    op = site.operator
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, line)
    elif op == "swap":
        if i + 1 >= len(lines):
            return None
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif op == "dedent":
        if not _indent(line):
            return None
        lines[i] = line[min(4, len(_indent(line))):]
    elif op == "indent":
        lines[i] = "    " + line
    elif op == "rename":
        here = [m for m in _IDENTIFIER.finditer(line) if m.group() not in _KEYWORDS]
        names = sorted({m.group() for m in _IDENTIFIER.finditer(text)} - _KEYWORDS)
        if not here or len(names) < 2:
            return None
        match = rng.choice(here)
        other = rng.choice([n for n in names if n != match.group()])
        lines[i] = line[: match.start()] + other + line[match.end():]
        detail = f":{match.group()}->{other}"
    elif op in ("break", "continue", "return"):
        lines.insert(i, _indent(line) + op)
    elif op == "wrap-if":
        indent = _indent(line)
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or len(_indent(lines[end])) > len(indent)):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1  # blank lines after the block stay where they are
        lines[i:end] = [indent + "if x:"] + ["    " + body if body.strip() else body for body in lines[i:end]]
    else:  # pragma: no cover
        raise ValueError(op)
    name = site.path.relative_to(ROOT) if site.path.is_relative_to(ROOT) else site.path
    return Mutant(f"{name}:{site.row}:{op}{detail}", "\n".join(lines))


def mutants_of(path: Path, seed: int = SEED) -> Iterator[Mutant]:
    """Every mutant of one file (for reducing a failure by hand)."""
    for site in sites([path]):
        mutant = mutate(site, random.Random(f"{seed}:{site.path.name}:{site.row}:{site.operator}"))
        if mutant is not None:
            yield mutant
