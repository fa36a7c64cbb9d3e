"""How fast is trainlint, measured against the floor: a bare `libcst.parse_module` of the same files.

    python bench/bench.py DIR [DIR ...] [--repeat N] [--phases] [--profile [--top K]]

Every `.py` file under DIR is read the way `trainlint check` reads it. Files that the byte prefilter
skips (no torch/keras/sklearn/...) cost trainlint almost nothing and would flatter the figures, so they
are only counted; the timings are for the files trainlint actually analyses. Single process, so the
figures are per core. For each analysed file both the floor and trainlint's whole per-file work
(`engine.check_file`: read, parse, model, rules, noqa, positions) are timed, interleaved, and the best of
`--repeat` runs is kept. `--edits` adds the fixes' text edits, which only `--output-format json/sarif`
compute.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import pstats
import sys
import time
from pathlib import Path

import libcst as cst

from trainlint.config import Settings
from trainlint.engine import check_file
from trainlint.files import ReadError, read_source


def collect(directories: list[Path]) -> tuple[list[tuple[Path, str]], int, list[tuple[Path, str]]]:
    """(analysed files with their text, number skipped by the prefilter, unreadable/unparsable files with why)."""
    analysed, skipped, unreadable = [], 0, []
    for directory in directories:
        for path in sorted(directory.rglob("*.py")):
            if not path.is_file():
                continue
            try:
                source = read_source(path)
            except ReadError as error:
                unreadable.append((path, error.message))
                continue
            if source is None:
                skipped += 1
                continue
            try:  # the floor is only defined for files libcst can parse; the others are E999 either way
                cst.parse_module(source.text)
            except cst.ParserSyntaxError:
                unreadable.append((path, "libcst cannot parse it (E999)"))
                continue
            analysed.append((path, source.text))
    return analysed, skipped, unreadable


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def measure(files: list[tuple[Path, str]], settings: Settings, repeat: int,
            edits: bool = False) -> tuple[float, float, list]:
    """(floor seconds, trainlint seconds, per-file rows) — per file the best of `repeat` runs."""
    rows = []
    lint_file = functools.partial(check_file, fix_edits=edits)
    for path, text in files:
        floor = lint = float("inf")
        for _ in range(repeat):
            floor = min(floor, _timed(cst.parse_module, text))
            lint = min(lint, _timed(lint_file, path, settings))
        rows.append((path, text.count("\n") + 1, floor, lint))
    return sum(r[2] for r in rows), sum(r[3] for r in rows), rows


def phases(files: list[tuple[Path, str]], settings: Settings) -> dict[str, float]:
    """Where trainlint's time goes: parse, model, each rule, positions. Uses engine internals."""
    from trainlint.analysis import ScriptModel

    totals: dict[str, float] = {"parse": 0.0, "model": 0.0, "positions": 0.0}
    rules = settings.enabled_rules()
    for _path, text in files:
        start = time.perf_counter()
        module = cst.parse_module(text)
        totals["parse"] += time.perf_counter() - start
        start = time.perf_counter()
        model = ScriptModel(module)
        totals["model"] += time.perf_counter() - start
        found = False
        for rule in rules:
            start = time.perf_counter()
            found |= bool(list(rule.check(model, settings.options_for(rule))))
            totals[f"rule {rule.code}"] = totals.get(f"rule {rule.code}", 0.0) + time.perf_counter() - start
        if found:
            start = time.perf_counter()
            model.positions  # noqa: B018 - computed only when a rule reports something
            totals["positions"] += time.perf_counter() - start
    return totals


def profile(files: list[tuple[Path, str]], settings: Settings, top: int, edits: bool = False) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for path, _text in files:
        check_file(path, settings, fix_edits=edits)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--repeat", type=int, default=1, help="keep the best of N runs per file (default 1)")
    parser.add_argument("--phases", action="store_true", help="also time parse / model / each rule / positions")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of trainlint's pass")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile to print")
    parser.add_argument("--slowest", type=int, default=5, help="list the N files with the worst ratio")
    parser.add_argument("--edits", action="store_true",
                        help="also compute each fix's text edit, as --output-format json/sarif do")
    args = parser.parse_args(argv)
    for directory in args.directories:
        if not directory.is_dir():
            parser.error(f"not a directory: {directory}")

    settings = Settings()  # every rule, no excludes: measure the analysis, not the configuration
    files, skipped, unreadable = collect(args.directories)
    total = len(files) + skipped + len(unreadable)
    print(f"{', '.join(map(str, args.directories))}")
    print(f"  .py files: {total}; prefilter skipped {skipped}; unreadable {len(unreadable)}; analysed {len(files)}")
    if not files:
        return 0
    gc.collect()
    floor, lint, rows = measure(files, settings, max(1, args.repeat), args.edits)
    lines = sum(r[1] for r in rows)
    print(f"  analysed: {len(files)} files, {lines} lines")
    print(f"  floor (libcst.parse_module): {floor:8.2f} s  {len(files) / floor:8.1f} files/s  {lines / floor:9.0f} lines/s")
    print(f"  trainlint (check_file):      {lint:8.2f} s  {len(files) / lint:8.1f} files/s  {lines / lint:9.0f} lines/s")
    print(f"  ratio trainlint / floor: {lint / floor:.2f}x  (target <= 1.5x)")
    if args.slowest:
        print("  worst ratios (files of 50+ lines):")
        ranked = sorted((r for r in rows if r[1] >= 50), key=lambda r: r[3] / r[2], reverse=True)
        for path, count, f, t in ranked[: args.slowest]:
            print(f"    {t / f:5.2f}x  {count:6d} lines  {t * 1000:8.1f} ms  {path}")
    if args.phases:
        totals = phases(files, settings)
        print("  phases (share of the floor):")
        for name, seconds in totals.items():
            print(f"    {name:<12} {seconds:8.2f} s  {seconds / floor:5.2f}x")
    if args.profile:
        print(profile(files, settings, args.top, args.edits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
