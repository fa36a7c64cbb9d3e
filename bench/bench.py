"""How fast is trainlint on a whole repository, side by side with ruff and the parse floors.

    python bench/bench.py DIR [DIR ...] [--rounds N] [--sweep] [--profile]

Each round runs, one after the other, as separate processes on the same files (so the machine's load
affects them alike; the median of the rounds is reported):

- ruff: `ruff check --select ALL --no-cache` (when ruff is installed): a fast, widely used linter, every
  rule on;
- trainlint cold: `trainlint check` with an empty cache directory;
- trainlint warm: the same command again, on the cache the cold run filled;
- the floors: `ast.parse` (the standard library's parser, which trainlint uses) and `libcst.parse_module`
  (the parser of trainlint 0.1 and of the libcst-based peers, when libcst is installed) of every file, in
  one process.

For each it prints files/s, lines/s, the peak memory of the largest process (trainlint's workers
included), and the ratio to ruff. `--sweep` times one file made of a training script repeated 10, 100,
400 and 1,000 times: time and memory must grow linearly with the size. `--profile` runs trainlint
in-process under cProfile on DIR (single process, no cache) and prints where the time goes.
Figures are ratios measured in one run; absolute seconds depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "train_classifier.py"

# Runs a command and prints its wall time and the peak RSS of it and its descendants (ru_maxrss of the
# children is the largest of them: trainlint's worker processes are counted).
_MEASURE = textwrap.dedent("""\
    import json, resource, subprocess, sys, time
    start = time.perf_counter()
    done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "mib": peak, "code": done.returncode,
                      "stderr": done.stderr.decode(errors="replace")[-400:]}))
    """)
_FLOOR = textwrap.dedent("""\
    import ast, sys, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    parse = ast.parse
    if sys.argv[1] == "libcst":
        import libcst
        parse = libcst.parse_module
    for folder in sys.argv[2:]:
        for path in Path(folder).rglob("*.py"):
            try:
                parse(path.read_text(encoding="utf-8"))
            except Exception:
                pass
    """)


def count(directories: list[Path]) -> tuple[int, int]:
    files = lines = 0
    for directory in directories:
        for path in directory.rglob("*"):
            if path.suffix in (".py", ".ipynb") and path.is_file():
                files += 1
                try:
                    lines += path.read_bytes().count(b"\n")
                except OSError:
                    pass
    return files, lines


def measure(command: list[str], env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True,
                          env=env or os.environ)
    result = json.loads(done.stdout)
    if result["code"] not in (0, 1):
        raise SystemExit(f"{' '.join(command[:4])} ... failed ({result['code']}): {result['stderr']}")
    return result


def ruff_command() -> list[str] | None:
    found = shutil.which("ruff")
    if found:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True)
    return [sys.executable, "-m", "ruff"] if probe.returncode == 0 else None


def trainlint_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("TRAINLINT_CACHE_DIR", None)
    return env


def rounds(directories: list[Path], count_rounds: int) -> dict[str, list[dict]]:
    folders = [str(d) for d in directories]
    ruff = ruff_command()
    has_libcst = subprocess.run([sys.executable, "-c", "import libcst"], capture_output=True).returncode == 0
    env = trainlint_env()
    results: dict[str, list[dict]] = {}
    for _ in range(count_rounds):
        cache = tempfile.mkdtemp(prefix="trainlint-bench-")
        try:
            lint = [sys.executable, "-m", "trainlint", "check", "--exit-zero", "-q", "--output-format", "concise",
                    "--cache-dir", cache, *folders]
            if ruff:
                results.setdefault("ruff --select ALL --no-cache", []).append(
                    measure([*ruff, "check", "--select", "ALL", "--no-cache", "--exit-zero", "-q", *folders]))
            results.setdefault("trainlint (cold cache)", []).append(measure(lint, env))
            results.setdefault("trainlint (warm cache)", []).append(measure(lint, env))
            results.setdefault("floor: ast.parse", []).append(measure([sys.executable, "-c", _FLOOR, "ast", *folders]))
            if has_libcst:
                results.setdefault("floor: libcst.parse_module", []).append(
                    measure([sys.executable, "-c", _FLOOR, "libcst", *folders]))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return results


def report(results: dict[str, list[dict]], files: int, lines: int) -> None:
    ruff = results.get("ruff --select ALL --no-cache")
    ruff_seconds = statistics.median(r["seconds"] for r in ruff) if ruff else None
    print(f"{files} files, {lines} lines; median of {len(next(iter(results.values())))} rounds\n")
    print(f"{'':32} {'seconds':>8} {'files/s':>9} {'lines/s':>10} {'peak MiB':>9} {'x ruff':>7}")
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        mib = max(r["mib"] for r in runs)
        ratio = f"{seconds / ruff_seconds:.2f}" if ruff_seconds else "-"
        print(f"{name:32} {seconds:8.2f} {files / seconds:9.0f} {lines / seconds:10.0f} {mib:9.0f} {ratio:>7}")


def sweep() -> None:
    """One file of k copies of a training script: time and memory against its size."""
    text = SAMPLE.read_text()
    env = trainlint_env()
    print(f"\n{'copies':>7} {'lines':>8} {'seconds':>8} {'ms / 1k lines':>14} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for copies in (10, 100, 400, 1000):
            body = "\n".join(text.replace("def main", f"def main{i}").replace("class Net", f"class Net{i}")
                             .replace("def evaluate", f"def evaluate{i}") for i in range(copies))
            path = Path(folder) / f"big_{copies}.py"
            path.write_text(body)
            lines = body.count("\n") + 1
            result = measure([sys.executable, "-m", "trainlint", "check", "--exit-zero", "-q", "--no-cache",
                              "--output-format", "concise", str(path)], env)
            print(f"{copies:7} {lines:8} {result['seconds']:8.2f} {1000 * result['seconds'] / lines * 1000:14.1f} "
                  f"{result['mib']:9.0f}")


def profile(directories: list[Path], top: int) -> None:
    sys.path.insert(0, str(ROOT))
    from trainlint.config import Settings
    from trainlint.engine.pool import _check_one

    paths = [p for d in directories for p in sorted(d.rglob("*.py")) if p.is_file()]
    profiler = cProfile.Profile()
    profiler.enable()
    for path in paths:
        _check_one((path, Settings(), False, False, False, True, None))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="*", type=Path, metavar="DIR")
    parser.add_argument("--rounds", type=int, default=3, help="rounds to take the median of (default 3)")
    parser.add_argument("--sweep", action="store_true", help="also time one file of growing size")
    parser.add_argument("--profile", action="store_true", help="profile trainlint in-process on DIR instead")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.directories, args.top)
        return 0
    if args.directories:
        files, lines = count(args.directories)
        report(rounds(args.directories, args.rounds), files, lines)
    if args.sweep or not args.directories:
        sweep()
    return 0


if __name__ == "__main__":
    sys.exit(main())
