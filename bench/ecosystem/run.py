"""Lint every materialised repository with this checkout's trainlint and hold the findings against the reviews.

Why: precision is measured on code nobody here wrote. Every finding on the pinned corpus is reviewed once
(bench/ecosystem/reviewed.tsv: true / false / debatable, and why); a change may add no false and no
unreviewed finding, and a change's effect is read as a diff against an earlier run (--baseline), as ruff's
ecosystem check and mypy_primer do.

A review is keyed by repo + path + rule code + the text of the reported line (stripped), not by line
number, so it survives edits elsewhere in the file. Identical keys (the same line text reported twice in
one file) are counted: each occurrence needs its own row, and they are paired in order.

    python bench/ecosystem/run.py                          # lint .ecosystem/, write .ecosystem/findings.json
    python bench/ecosystem/run.py --baseline bench/ecosystem/baseline-v0.1.json
    python bench/ecosystem/run.py --from .ecosystem/findings.json --table-markdown   # no linting

Exit status: 0 when every finding is reviewed and none is false; 1 when some finding is unreviewed or
false; 2 when a repository could not be linted (no checkout, wrong commit, trainlint failed).
Standard library only (plus tomli on Python 3.10).
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import re
import subprocess
import sys
import time
import tokenize
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY_ROOT = HERE.parent.parent
CONFIG = HERE / "trainlint.toml"  # trainlint's defaults, whatever pyproject.toml sits above the corpus
VERDICTS = ("true", "false", "debatable")
REVIEW_COLUMNS = ("repo", "path", "code", "line", "verdict", "reason")
MAX_LINE = 300  # characters of the reported line kept as its key (minified notebook lines can be huge)
# trainlint's (and ruff's) default excludes, to count the files it lints without importing it.
EXCLUDED_DIRS = frozenset((
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".svn", ".tox", ".venv", ".vscode",
    "__pycache__", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules", "site-packages", "venv",
))
SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")

sys.path.insert(0, str(HERE))
from corpus import Repo, folder_name, load_repos, marker_commit, select_repos  # noqa: E402  (sibling module)


# ---------------------------------------------------------------- findings and reviews

@dataclass(frozen=True)
class Review:
    repo: str
    path: str
    code: str
    line: str
    verdict: str
    reason: str
    source_row: int = 0  # row in reviewed.tsv, for messages

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.repo, self.path, self.code, self.line)


def finding_key(finding: dict) -> tuple[str, str, str, str]:
    return (finding["repo"], finding["path"], finding["code"], finding["line"])


def normalise_line(text: str) -> str:
    """The reported line as a key: stripped, tabs as spaces (reviewed.tsv is tab-separated), capped."""
    return text.strip().replace("\t", " ")[:MAX_LINE]


def load_reviews(path: Path) -> list[Review]:
    """reviewed.tsv: a header, then one row per reviewed finding. Malformed rows are errors (exit 2):
    a review that silently matches nothing would hide a finding."""
    if not path.exists():
        return []
    reviews = []
    problems = []
    with open(path, encoding="utf-8", newline="") as handle:
        rows = handle.read().split("\n")
    if not rows or tuple(rows[0].rstrip("\r").split("\t")) != REVIEW_COLUMNS:
        raise SystemExit(f"{path}: the first row must be the header {chr(9).join(REVIEW_COLUMNS)!r}")
    for number, raw in enumerate(rows[1:], start=2):
        raw = raw.rstrip("\r")
        if not raw.strip() or raw.startswith("#"):
            continue
        cells = raw.split("\t")
        if len(cells) < 5:
            problems.append(f"{path}:{number}: expected 6 tab-separated columns, got {len(cells)}")
            continue
        repo, file_path, code, line, verdict = cells[:5]
        reason = "\t".join(cells[5:]).strip()
        if verdict not in VERDICTS:
            problems.append(f"{path}:{number}: verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
            continue
        reviews.append(Review(repo, file_path, code, normalise_line(line), verdict, reason, number))
    if problems:
        raise SystemExit("\n".join(problems))
    return reviews


@dataclass
class Matched:
    """Each current finding with its review (None: unreviewed), and the reviews no finding took."""

    verdicts: list[Review | None]
    leftover: list[Review] = field(default_factory=list)

    @property
    def disappeared_true(self) -> list[Review]:
        return [r for r in self.leftover if r.verdict == "true"]


def match(findings: list[dict], reviews: list[Review], repos: set[str] | None = None) -> Matched:
    """Pair findings with reviews by key, counting duplicates: the n-th finding of a key (in file order)
    takes the n-th review of that key (in reviewed.tsv order). Reviews of repositories outside `repos`
    (those not in this run) are not leftovers: their findings were not looked for."""
    pool: dict[tuple, list[Review]] = defaultdict(list)
    for review in reviews:
        pool[review.key].append(review)
    taken: Counter = Counter()
    verdicts: list[Review | None] = []
    for finding in findings:
        key = finding_key(finding)
        available = pool.get(key, [])
        if taken[key] < len(available):
            verdicts.append(available[taken[key]])
            taken[key] += 1
        else:
            verdicts.append(None)
    leftover = [review for key, group in pool.items() for review in group[taken[key]:]
                if repos is None or review.repo in repos]
    return Matched(verdicts, leftover)


def verdict_name(review: Review | None) -> str:
    return review.verdict if review is not None else "unreviewed"


def exit_status(matched: Matched, failed_repos: list[str]) -> int:
    if failed_repos:
        return 2
    if any(review is None or review.verdict == "false" for review in matched.verdicts):
        return 1
    return 0


@dataclass
class BaselineDiff:
    added: dict[str, list[dict]]  # repo -> findings of this run that the baseline lacks
    removed: dict[str, list[dict]]  # repo -> findings of the baseline that this run lacks
    commit_changed: dict[str, tuple[str, str]]  # repo -> (baseline commit, this run's commit)


def baseline_diff(old: dict, new: dict) -> BaselineDiff:
    """What this run added and removed, per repository, counting identical keys. Only repositories that
    both runs linted are compared (a run restricted with --repos is not a run that lost the rest)."""
    old_repos = {r["name"]: r for r in old["repos"] if not r.get("error")}
    new_repos = {r["name"]: r for r in new["repos"] if not r.get("error")}
    common = set(old_repos) & set(new_repos)
    changed = {name: (old_repos[name].get("commit", ""), new_repos[name].get("commit", ""))
               for name in sorted(common) if old_repos[name].get("commit") != new_repos[name].get("commit")}

    def by_key(findings: list[dict]) -> dict[tuple, list[dict]]:
        grouped: dict[tuple, list[dict]] = defaultdict(list)
        for finding in findings:
            if finding["repo"] in common:
                grouped[finding_key(finding)].append(finding)
        return grouped

    before, after = by_key(old["findings"]), by_key(new["findings"])
    added: dict[str, list[dict]] = defaultdict(list)
    removed: dict[str, list[dict]] = defaultdict(list)
    for key in set(before) | set(after):
        then, now = before.get(key, []), after.get(key, [])
        for finding in now[len(then):]:
            added[key[0]].append(finding)
        for finding in then[len(now):]:
            removed[key[0]].append(finding)
    order = _location_order
    return BaselineDiff({k: sorted(v, key=order) for k, v in sorted(added.items())},
                        {k: sorted(v, key=order) for k, v in sorted(removed.items())}, changed)


def _location_order(finding: dict) -> tuple:
    return (finding["repo"], finding["path"], finding.get("cell") or 0, finding.get("row") or 0,
            finding.get("column") or 0, finding["code"])


# ---------------------------------------------------------------- linting

def read_reported_line(tree: Path, path: str, row: int | None, cell: int | None) -> str:
    """The text of the reported line, read from the file (from the notebook's cell for notebooks), as
    trainlint numbers lines: only \\n, \\r\\n and \\r end one."""
    if not row:
        return ""
    try:
        data = (tree / path).read_bytes()
    except OSError:
        return ""
    if cell:
        try:
            cells = json.loads(data.decode("utf-8-sig"))["cells"]
            source = cells[cell - 1].get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return ""
    else:
        try:
            encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        except SyntaxError:
            encoding = "utf-8"
        text = data.decode("utf-8" if encoding == "utf-8-sig" else encoding, errors="replace").lstrip("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)
    return normalise_line(lines[row - 1]) if 0 < row <= len(lines) else ""


def count_source(tree: Path, paths: tuple[str, ...]) -> tuple[int, int]:
    """(files, lines) that trainlint is asked to lint: .py/.pyi/.ipynb outside the default excludes;
    a notebook's lines are those of its code cells."""
    files = lines = 0
    for top in [tree / p for p in paths] or [tree]:
        for directory, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
            for name in filenames:
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                files += 1
                lines += _count_lines(Path(directory) / name)
    return files, lines


def _count_lines(path: Path) -> int:
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    if path.suffix != ".ipynb":
        return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    try:
        cells = json.loads(data.decode("utf-8-sig")).get("cells", [])
        total = 0
        for cell in cells:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else str(source)
                total += len(text.splitlines())
        return total
    except (ValueError, AttributeError, TypeError):
        return 0


@dataclass
class RepoRun:
    repo: Repo
    findings: list[dict]
    files: int = 0
    lines: int = 0
    seconds: float = 0.0
    error: str | None = None

    def summary(self) -> dict:
        return {"name": self.repo.name, "commit": self.repo.commit, "group": self.repo.group,
                "paths": list(self.repo.paths), "files": self.files, "lines": self.lines,
                "seconds": round(self.seconds, 2), "findings": len(self.findings), "error": self.error}


def lint_repo(repo: Repo, ecosystem: Path, python: str = sys.executable, select: str | None = None) -> RepoRun:
    """One trainlint subprocess for one repository, run from the repository's folder so that paths in
    the findings are relative to it; PYTHONPATH makes it this checkout's trainlint."""
    tree = ecosystem / folder_name(repo.name)
    at = marker_commit(tree)
    if at is None:
        return RepoRun(repo, [], error=f"not checked out in {tree} (run bench/ecosystem/checkout.py)")
    if at != repo.commit:
        return RepoRun(repo, [], error=f"checked out at {at[:12]}, pinned at {repo.commit[:12]} (run checkout.py)")
    missing = [p for p in repo.paths if not (tree / p).is_dir()]
    if missing:
        return RepoRun(repo, [], error=f"paths not in the repository: {', '.join(missing)}")
    files, lines = count_source(tree, repo.paths)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), environment.get("PYTHONPATH")]))
    command = [python, "-m", "trainlint", "check", "--output-format", "json", "--exit-zero", "--no-cache",
               "--config", str(CONFIG), *(["--select", select] if select else []), *(repo.paths or ["."])]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True)
    if result.returncode == 2 and "unrecognized arguments: --no-cache" in result.stderr:
        command.remove("--no-cache")
        result = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-5:]
        return RepoRun(repo, [], files, lines, seconds, f"trainlint exited {result.returncode}: {' | '.join(tail)}")
    try:
        raw = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        return RepoRun(repo, [], files, lines, seconds, f"trainlint's output is not JSON: {error}")
    findings = []
    for item in raw:
        path = Path(item["filename"]).as_posix()
        path = path[2:] if path.startswith("./") else path
        location = item.get("location") or {}
        row, cell = location.get("row"), item.get("cell")
        findings.append({"repo": repo.name, "path": path, "code": item["code"], "row": row,
                         "column": location.get("column"), "cell": cell, "message": item["message"],
                         "line": read_reported_line(tree, path, row, cell)})
    findings.sort(key=_location_order)
    return RepoRun(repo, findings, files, lines, seconds)


def trainlint_revision() -> dict:
    """Which trainlint produced a run: the commit of this checkout, and whether it had local changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(REPOSITORY_ROOT), *args], capture_output=True, text=True)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


# ---------------------------------------------------------------- reports

def rule_table(findings: list[dict], matched: Matched, groups: dict[str, str]) -> dict:
    """{(code, group): Counter(verdict)} with group "all" for the total over groups."""
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for finding, review in zip(findings, matched.verdicts):
        verdict = verdict_name(review)
        group = groups.get(finding["repo"], "?")
        table[(finding["code"], "all")][verdict] += 1
        table[(finding["code"], group)][verdict] += 1
    return table


_COLUMNS = ("true", "false", "debatable", "unreviewed")


def _precision(counts: Counter) -> str:
    judged = counts["true"] + counts["false"]
    return f"{100 * counts['true'] / judged:.0f}%" if judged else "-"


def table_rows(table: dict, group_order: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Rows of the overall table (one per rule, then the total) and of the per-group table."""
    codes = sorted({code for code, _ in table})
    overall = []
    total: Counter = Counter()
    for code in codes:
        counts = table[(code, "all")]
        total.update(counts)
        overall.append([code, *(str(counts[c]) for c in _COLUMNS), str(sum(counts.values())), _precision(counts)])
    overall.append(["all", *(str(total[c]) for c in _COLUMNS), str(sum(total.values())), _precision(total)])
    per_group = []
    for group in group_order:
        for code in codes:
            counts = table.get((code, group))
            if counts:
                per_group.append([group, code, *(str(counts[c]) for c in _COLUMNS), str(sum(counts.values())),
                                  _precision(counts)])
    return overall, per_group


def _numeric_columns(header: list[str], rows: list[list[str]]) -> list[bool]:
    return [bool(rows) and all(row[i][:1].isdigit() or row[i] == "-" for row in rows) for i in range(len(header))]


def format_text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    numeric = _numeric_columns(header, rows)
    def line(row: list[str]) -> str:
        return "  ".join(cell.rjust(w) if n else cell.ljust(w) for cell, w, n in zip(row, widths, numeric)).rstrip()
    return "\n".join(line(row) for row in [header, *rows])


def format_markdown_table(header: list[str], rows: list[list[str]]) -> str:
    numeric = _numeric_columns(header, rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def describe(finding: dict, group: str = "") -> str:
    where = f"{finding['path']}:{finding.get('row')}:{finding.get('column')}"
    if finding.get("cell"):
        where += f" (cell {finding['cell']})"
    head = f"{finding['repo']}" + (f" [{group}]" if group else "")
    return f"{head} {where}  {finding['code']}  {finding['message']}\n    | {finding['line']}"


def tsv_row(finding: dict, verdict: str = "", reason: str = "") -> str:
    return "\t".join([finding["repo"], finding["path"], finding["code"], finding["line"], verdict, reason])


def print_report(run: dict, matched: Matched, groups: dict[str, str], quiet: bool, out=None) -> None:
    out = out or sys.stdout
    findings = run["findings"]
    unreviewed = [f for f, r in zip(findings, matched.verdicts) if r is None]
    false = [(f, r) for f, r in zip(findings, matched.verdicts) if r is not None and r.verdict == "false"]
    print(f"\n== unreviewed findings: {len(unreviewed)}", file=out)
    if not quiet:
        for finding in unreviewed:
            print(describe(finding, groups.get(finding["repo"], "")), file=out)
    if false:
        print(f"\n== findings reviewed as false: {len(false)}", file=out)
        for finding, review in false:
            print(describe(finding, groups.get(finding["repo"], "")) + f"\n    false: {review.reason}", file=out)
    disappeared = matched.disappeared_true
    print(f"\n== reviewed true findings that disappeared: {len(disappeared)}", file=out)
    for review in disappeared:
        print(f"{review.repo} {review.path}  {review.code}  (reviewed.tsv row {review.source_row})\n"
              f"    | {review.line}\n    true: {review.reason}", file=out)
    gone = [r for r in matched.leftover if r.verdict != "true"]
    if gone:
        print(f"\n({len(gone)} reviewed false/debatable findings are gone: their rows in reviewed.tsv can be "
              f"kept as history or removed)", file=out)


def print_tables(run: dict, matched: Matched, groups: dict[str, str], markdown: bool, out=None) -> None:
    out = out or sys.stdout
    order = []
    for repo in run["repos"]:
        if repo["group"] not in order:
            order.append(repo["group"])
    table = rule_table(run["findings"], matched, groups)
    overall, per_group = table_rows(table, order)
    head = ["rule", *_COLUMNS, "total", "precision"]
    render = format_markdown_table if markdown else format_text_table
    print("\n" + ("" if markdown else "== findings per rule (precision = true / (true + false))\n")
          + render(head, overall), file=out)
    print("\n" + ("" if markdown else "== per group\n") + render(["group", *head], per_group), file=out)


def print_baseline(diff: BaselineDiff, old_path: Path, out=None) -> None:
    out = out or sys.stdout
    added = sum(len(v) for v in diff.added.values())
    removed = sum(len(v) for v in diff.removed.values())
    print(f"\n== against {old_path}: +{added} -{removed}", file=out)
    for name, (then, now) in diff.commit_changed.items():
        print(f"note: {name} was linted at {then[:12]} in the baseline and at {now[:12]} now", file=out)
    for name in sorted(set(diff.added) | set(diff.removed)):
        print(f"{name}: +{len(diff.added.get(name, []))} -{len(diff.removed.get(name, []))}", file=out)
        for sign, findings in (("+", diff.added.get(name, [])), ("-", diff.removed.get(name, []))):
            for finding in findings:
                cell = f" (cell {finding['cell']})" if finding.get("cell") else ""
                where = f"{finding['path']}:{finding.get('row')}{cell}"
                print(f"  {sign} {where}  {finding['code']}  {finding['line']}", file=out)
    codes = Counter()
    for findings, step in ((diff.added, 1), (diff.removed, -1)):
        for finding in (f for v in findings.values() for f in v):
            codes[finding["code"]] += step
    if codes:
        deltas = [f"{code} {delta:+d}" for code, delta in sorted(codes.items()) if delta]
        print("per rule: " + ", ".join(deltas), file=out)


# ---------------------------------------------------------------- entry point

def load_run(path: Path) -> dict:
    """A findings file: this script's object, or a bare list of findings (repos then inferred)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, list):
        names = sorted({f["repo"] for f in data})
        data = {"repos": [{"name": n, "group": "?", "commit": ""} for n in names], "findings": data}
    return data


def restrict(run: dict, repos: list[Repo] | None) -> dict:
    if repos is None:
        return run
    names = {r.name for r in repos}
    return {**run, "repos": [r for r in run["repos"] if r["name"] in names],
            "findings": [f for f in run["findings"] if f["repo"] in names]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPOSITORY_ROOT,
                        help="folder holding .ecosystem/ (default: this repository's root)")
    parser.add_argument("--repos-file", type=Path, default=HERE / "repos.toml")
    parser.add_argument("--reviewed", type=Path, default=HERE / "reviewed.tsv")
    parser.add_argument("--output", type=Path, help="findings JSON to write (default: <root>/.ecosystem/findings.json)")
    parser.add_argument("--from", dest="from_file", type=Path,
                        help="do not lint: take the findings of an earlier run from this JSON file")
    parser.add_argument("--baseline", type=Path, help="an earlier findings JSON: print what was added and removed")
    parser.add_argument("--repos", help="comma-separated owner/name list: only these")
    parser.add_argument("--group", help="only the repositories of this group")
    parser.add_argument("--select", help="comma-separated rule codes or prefixes: lint and compare only these "
                                         "(reviews and the baseline of other rules are left out)")
    parser.add_argument("--table-markdown", action="store_true",
                        help="print only the per-rule and per-group tables, as markdown (for docs/precision.md)")
    parser.add_argument("-q", "--quiet", action="store_true", help="count the unreviewed findings, do not list them")
    parser.add_argument("--unreviewed-tsv", type=Path,
                        help="also write the unreviewed findings as reviewed.tsv rows with the verdict left blank")
    args = parser.parse_args(argv)

    if args.from_file is not None:
        run = load_run(args.from_file)
        chosen = None
        if args.repos or args.group:
            pinned = [Repo(r["name"], r.get("commit") or "0" * 40, r.get("group", "?")) for r in run["repos"]]
            chosen = select_repos(pinned, args.repos, args.group)
        run = restrict(run, chosen)
    else:
        repos = select_repos(load_repos(args.repos_file), args.repos, args.group)
        run = lint_all(repos, args.root / ".ecosystem", quiet_table=args.table_markdown, select=args.select)
        output = args.output or args.root / ".ecosystem" / "findings.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if not args.table_markdown:
            print(f"findings written to {output}")

    groups = {r["name"]: r.get("group", "?") for r in run["repos"]}
    linted = {r["name"] for r in run["repos"] if not r.get("error")}
    failed = [r["name"] for r in run["repos"] if r.get("error")]
    reviews = load_reviews(args.reviewed)
    if args.select:
        run = {**run, "findings": [f for f in run["findings"] if selected(f["code"], args.select)]}
        reviews = [r for r in reviews if selected(r.code, args.select)]
    matched = match(run["findings"], reviews, linted)
    if args.table_markdown:
        print_tables(run, matched, groups, markdown=True)
        return 0
    print_report(run, matched, groups, args.quiet)
    print_tables(run, matched, groups, markdown=False)
    if args.unreviewed_tsv is not None:
        rows = [tsv_row(f) for f, r in zip(run["findings"], matched.verdicts) if r is None]
        args.unreviewed_tsv.write_text("\t".join(REVIEW_COLUMNS) + "\n" + "".join(r + "\n" for r in rows),
                                       encoding="utf-8")
        print(f"\n{len(rows)} unreviewed rows written to {args.unreviewed_tsv}")
    if args.baseline is not None:
        baseline = load_run(args.baseline)
        if args.select:
            baseline = {**baseline, "findings": [f for f in baseline["findings"] if selected(f["code"], args.select)]}
        print_baseline(baseline_diff(baseline, run), args.baseline)
    for name in failed:
        error = next(r["error"] for r in run["repos"] if r["name"] == name)
        print(f"error: {name}: {error}", file=sys.stderr)
    return exit_status(matched, failed)


def selected(code: str, select: str) -> bool:
    return any(code.startswith(s.strip()) for s in select.split(",") if s.strip())


def lint_all(repos: list[Repo], ecosystem: Path, quiet_table: bool = False, select: str | None = None) -> dict:
    """Lint each repository in turn (trainlint itself spreads one repository's files over the cores)."""
    log = sys.stderr if quiet_table else sys.stdout
    print(f"{'repository':<55} {'files':>6} {'lines':>8} {'findings':>8} {'seconds':>8}", file=log)
    started = time.perf_counter()
    runs = []
    for repo in repos:
        result = lint_repo(repo, ecosystem, select=select)
        runs.append(result)
        status = f"  ERROR {result.error}" if result.error else ""
        print(f"{repo.name:<55} {result.files:>6} {result.lines:>8} {len(result.findings):>8} "
              f"{result.seconds:>8.1f}{status}", file=log, flush=True)
    wall = time.perf_counter() - started
    files, lines = sum(r.files for r in runs), sum(r.lines for r in runs)
    findings = sum(len(r.findings) for r in runs)
    print(f"{'total: ' + str(len(runs)) + ' repositories':<55} {files:>6} {lines:>8} {findings:>8} {wall:>8.1f}",
          file=log)
    return {
        "format": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "trainlint": trainlint_revision(),
        "python": sys.version.split()[0],
        "wall_seconds": round(wall, 1),
        "repos": [r.summary() for r in runs],
        "findings": [f for r in runs for f in r.findings],
    }


if __name__ == "__main__":
    sys.exit(main())
