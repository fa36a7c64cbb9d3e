"""The command line: `trainlint check`, `trainlint rule CODE`, `trainlint rules`, `trainlint server`,
`trainlint --version`."""
from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

from . import __version__
from .config import ConfigError, SettingsResolver, validate_selectors
from .diagnostics import IO_ERROR, FileResult, Finding, Location
from .engine import check_files
from .engine.cache import CACHE_DIR_NAME, ENV_VAR, Cache, default_dir
from .files import discover
from .output import FORMATS, Report, write_report
from .rules import ALL_RULES, RULES_BY_CODE, RULES_BY_NAME


# The formats that print each fix's text edit; the others only say whether a finding is fixable, and
# computing the edits (a partial re-generation of the code per finding) is skipped for them.
FORMATS_WITH_FIX_EDITS = ("json", "sarif")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # bad usage exits 2, as argparse does, with our prefix
        self.print_usage(sys.stderr)
        self.exit(2, f"trainlint: error: {message}\n")


def _codes(value: str) -> list[str]:
    return [code.strip().upper() for code in value.split(",") if code.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trainlint", description="A linter for PyTorch and Keras training scripts.")
    parser.add_argument("--version", action="version", version=f"trainlint {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser("check", help="Lint files and folders (default: .)")
    check.add_argument("paths", nargs="*", type=Path, default=[], metavar="PATH")
    check.add_argument("--select", type=_codes, help="Rule codes or prefixes to enable (replaces the config's)")
    check.add_argument("--ignore", type=_codes, help="Rule codes or prefixes to disable")
    check.add_argument("--extend-select", type=_codes, help="Rule codes or prefixes to enable in addition")
    check.add_argument("--fix", action="store_true", help="Apply safe fixes")
    check.add_argument("--unsafe-fixes", action="store_true", help="Also apply (and offer) unsafe fixes")
    check.add_argument("--diff", action="store_true",
                       help="Show the fixes as a unified diff; write nothing; exit 1 if there are any")
    check.add_argument("--output-format", choices=FORMATS, default="full")
    check.add_argument("--config", type=Path, help="Use this configuration file instead of the nearest pyproject.toml")
    check.add_argument("--exit-zero", action="store_true", help="Exit with 0 even when there are findings")
    check.add_argument("-q", "--quiet", action="store_true", help="Print findings only, no summary")
    check.add_argument("--statistics", action="store_true", help="Count findings per rule")
    check.add_argument("--no-cache", action="store_true", help="Analyse every file again; read and write no cache")
    check.add_argument("--cache-dir", type=Path, metavar="DIR",
                       help=f"Where to keep the cache (default: {CACHE_DIR_NAME} at the project root, "
                            f"or ${ENV_VAR})")

    rule = commands.add_parser("rule", help="Explain a rule")
    rule.add_argument("code", metavar="CODE", help="A rule code (TL001) or name (missing-zero-grad)")
    commands.add_parser("rules", help="List every rule")
    commands.add_parser("server", help="Run the language server (LSP over stdio) for editors; see docs/editors.md")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "rule":
            return _rule(args.code)
        if args.command == "rules":
            return _rules()
        if args.command == "server":
            from .server import serve  # imported here: pygls is not loaded for `check`

            return serve()
        if args.command != "check":
            parser.print_help(sys.stderr)
            return 2
        return _check(args)
    except ConfigError as error:
        print(f"trainlint: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `trainlint check | head`: the reader left; say nothing more
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the exit flush does not fail again
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        print("trainlint: interrupted", file=sys.stderr)
        return 130


def _rule(code: str) -> int:
    rule = RULES_BY_CODE.get(code.upper()) or RULES_BY_NAME.get(code)
    if rule is None:
        print(f"trainlint: error: unknown rule '{code}' (see `trainlint rules`)", file=sys.stderr)
        return 2
    print(rule.page(), end="")
    return 0


def _rules() -> int:
    width = max(len(r.name) for r in ALL_RULES)
    print(f"{'code':<6} {'name':<{width}}  {'fix':<6}  summary")
    for rule in ALL_RULES:
        print(f"{rule.code:<6} {rule.name:<{width}}  {rule.fix:<6}  {rule.summary}")
    return 0


def _check(args) -> int:
    for key in ("select", "ignore", "extend_select"):
        if getattr(args, key):
            validate_selectors(getattr(args, key), f"--{key.replace('_', '-')}")
    overrides = {"select": args.select, "ignore": args.ignore, "extend_select": args.extend_select}
    if args.config is not None and not args.config.is_file():
        raise ConfigError(f"--config: no such file: {args.config}")
    resolver = SettingsResolver(args.config, overrides)
    paths = args.paths or [Path(".")]
    read_only: dict[Path, Path] = {}  # links found in a folder that lead outside it: linted, never written
    files, problems = discover(paths, resolver, read_only)

    results: list[FileResult] = []
    for path, why in problems:
        location = Location(1, 1)
        results.append(FileResult(str(path), [Finding(IO_ERROR, "io-error", why, str(path), location, location)]))
    report = Report(args.output_format, statistics=args.statistics, quiet=args.quiet, fix=args.fix,
                    unsafe_fixes=args.unsafe_fixes, diff=args.diff)
    # Start the workers before the progress bar starts its thread: never fork a threaded process.
    cache = None if args.no_cache else Cache(args.cache_dir or default_dir(resolver.for_path(Path.cwd()).root))
    stream = check_files(files, fix=args.fix, unsafe=args.unsafe_fixes, diff=args.diff,
                         fix_edits=args.output_format in FORMATS_WITH_FIX_EDITS, cache=cache,
                         read_only=read_only)
    with report.progress(len(files)) as advance:
        for (path, _), result in zip(files, stream):
            if path in read_only and (args.fix or args.diff):
                _refuse_outside_link(result, read_only[path], args.unsafe_fixes)
            results.append(result)
            if advance:
                advance()

    _drop_repeats(results)
    if args.diff:
        changed = _print_diff(results)
        errors = any(f.is_error for r in results for f in r.findings) or any(r.fix_error for r in results)
        return 0 if args.exit_zero else (1 if changed or errors else 0)
    write_report(report, results)
    remaining = [f for r in results for f in r.findings]
    if args.exit_zero:
        return 0
    refused = any(r.fix_error for r in results)
    return 1 if remaining or refused else 0


def _drop_repeats(results: list[FileResult]) -> None:
    """A finding reported where a helper of another module is called is about the helper's own code; when
    this run lints the helper's file too, that file reports it (with its fix), and the call site does not."""
    reported = {(os.path.realpath(r.filename), f.location.row, f.code) for r in results for f in r.findings}
    for result in results:
        if any(f.origin for f in result.findings):
            result.findings = [f for f in result.findings if not f.origin
                               or (os.path.realpath(f.origin[0]), f.origin[1], f.code) not in reported]


def _refuse_outside_link(result: FileResult, target: Path, unsafe: bool) -> None:
    """Say why a fixable file found through a symbolic link leading out of the folder was not fixed."""
    applicable = ("safe", "unsafe") if unsafe else ("safe",)
    if any(f.fix is not None and f.fix.applicability in applicable for f in result.findings):
        result.fix_error = (f"it is a symbolic link to {target}, outside the folder being checked; "
                            f"run `trainlint check --fix {target}` to fix that file")


def _print_diff(results: list[FileResult]) -> bool:
    changed = False
    for result in results:
        for finding in result.findings:
            if finding.is_error:
                print(f"{finding.filename}:{finding.location.row}:{finding.location.column}: "
                      f"{finding.code} {finding.message}", file=sys.stderr)
        if result.fix_error:
            print(f"{result.filename}: fixes not applied: {result.fix_error}", file=sys.stderr)
        for why in result.refused_fixes:
            print(f"{result.filename}: fix not applied: {why}", file=sys.stderr)
        if result.fixed is None or result.original is None:
            continue
        changed = True
        if result.cell_changes:  # a notebook: a diff per changed cell, of its code (not its JSON), as ruff
            for number, before, after in result.cell_changes:
                sys.stdout.write(unified_diff(before, after, f"{result.filename}:cell {number}"))
            continue
        sys.stdout.write(unified_diff(result.original, result.fixed, result.filename))
    return changed


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def unified_diff(before: str, after: str, filename: str) -> str:
    """A unified diff that `patch -p0` and `git apply` take as is: lines split only where Python ends a
    line, and a last line without a newline marked `\\ No newline at end of file`."""
    lines = []
    for line in difflib.unified_diff(_LINE.findall(before), _LINE.findall(after),
                                     fromfile=filename, tofile=filename):
        if line.endswith(("\n", "\r")):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines)
