"""Many files: in parallel across cores, one file's crash never stopping the others."""
from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path
from typing import Container, Iterator

from ..config import Settings
from ..diagnostics import IO_ERROR, FileResult, Finding, Location
from ..project import index as project_index
from . import run
from .cache import Cache

_PARALLEL_THRESHOLD = 8  # below this many files, a process pool costs more than it saves


def _error_result(path: Path, message: str) -> FileResult:
    location = Location(1, 1)
    message = " ".join(message.split())  # one line, whatever an exception says
    return FileResult(str(path), [Finding(IO_ERROR, "io-error", message, str(path), location, location)])


def _check_one(args) -> FileResult:
    path, settings, fix, unsafe, diff, fix_edits, cache = args
    try:
        return run.check_file(path, settings, fix, unsafe, diff, fix_edits=fix_edits, cache=cache)
    except RecursionError:
        return _error_result(path, "File is nested too deeply to analyse")
    except MemoryError:
        return _error_result(path, "Out of memory while analysing this file")
    except Exception as error:  # a bug in trainlint must not stop the other files from being checked
        return _error_result(path, f"Internal error while checking this file ({type(error).__name__}: {error}); "
                                   f"please report it")
    finally:
        _keep_long_lived_out_of_the_collector()


def _check_chunk(tasks: list[tuple]) -> list[FileResult]:
    return [_check_one(task) for task in tasks]


def _check_isolated(task: tuple) -> FileResult:
    """One file in a process of its own, after a worker died: find the file that kills it, and go on."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            return pool.submit(_check_one, task).result()
    except BrokenProcessPool:
        return _error_result(task[0], "trainlint crashed while checking this file (the process died); "
                                      "please report it")


def check_files(files: list[tuple[Path, Settings]], fix: bool = False, unsafe: bool = False, diff: bool = False,
                jobs: int | None = None, progress=None, *, fix_edits: bool = True,
                cache: Cache | None = None, read_only: Container[Path] = ()) -> Iterator[FileResult]:
    """A FileResult per file, in the order given; in parallel across cores when there are many. The files in
    `read_only` are only linted, never fixed nor diffed (see files.discover).

    With a cache, the files it has (unchanged, nothing to fix) are answered first, in this process; only the
    others go to the workers. The worker processes start when this is called, not when the results are first
    read: call it before starting any thread (a progress bar), so that workers are not forked from a
    threaded process.
    """
    tasks = [(path, settings, fix, unsafe, diff, fix_edits, cache) if path not in read_only
             else (path, settings, False, unsafe, False, fix_edits, cache) for path, settings in files]
    known: dict[int, FileResult] = {}
    if cache is not None:
        for index, task in enumerate(tasks):
            path, settings, task_fix, _, task_diff = task[:5]
            result = run.from_cache(path, settings, task_fix, unsafe, task_diff, cache)
            if result is not None:
                known[index] = result
    rest = [task for index, task in enumerate(tasks) if index not in known]
    computed = _run(rest, jobs, progress)
    return _in_order(len(tasks), known, computed, progress)


def _in_order(total: int, known: dict[int, FileResult], computed: Iterator[FileResult], progress) -> Iterator[FileResult]:
    for index in range(total):
        if index in known:
            yield known[index]
            if progress:
                progress()
        else:
            yield next(computed)


def _run(tasks: list[tuple], jobs: int | None, progress) -> Iterator[FileResult]:
    jobs = jobs or os.cpu_count() or 1
    if len(tasks) < _PARALLEL_THRESHOLD or jobs == 1:
        return _sequential(tasks, progress)
    from concurrent.futures import ProcessPoolExecutor  # only a run that needs workers pays for the import

    jobs = min(jobs, len(tasks))
    size = max(1, len(tasks) // (jobs * 8))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_tune_gc)
    try:
        futures = [pool.submit(_check_chunk, chunk) for chunk in chunks]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return _collect(pool, chunks, futures, progress)


# A syntax tree is hundreds of thousands of small objects without cycles: the collector's frequent
# young-generation passes over them cost ~10% of the run and free nothing. Collect less often.
_GC_THRESHOLD = 20_000


_parsed_at_freeze = -1


def _keep_long_lived_out_of_the_collector() -> None:
    """The project modules a run follows helpers into are parsed once and kept for the run: hundreds of
    thousands of objects the cyclic collector would walk on each of its full passes, after every file. When
    new ones were parsed, collect the previous files' garbage once and freeze what lives on, so that the
    collector's passes cost what one file allocates (measured: 10x less CPU on diffusers' examples)."""
    global _parsed_at_freeze
    if project_index.PARSED != _parsed_at_freeze:
        _parsed_at_freeze = project_index.PARSED
        gc.collect()
        gc.freeze()


def _tune_gc() -> None:
    gc.set_threshold(max(gc.get_threshold()[0], _GC_THRESHOLD), *gc.get_threshold()[1:])


@contextlib.contextmanager
def _tuned_gc():
    before = gc.get_threshold()
    _tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _sequential(tasks: list[tuple], progress) -> Iterator[FileResult]:
    with _tuned_gc():
        for task in tasks:
            result = _check_one(task)
            yield result
            if progress:
                progress()


def _collect(pool, chunks: list[list[tuple]], futures: list, progress) -> Iterator[FileResult]:
    from concurrent.futures.process import BrokenProcessPool

    try:
        broken = False
        for chunk, future in zip(chunks, futures):
            if not broken:
                try:
                    results = future.result()
                except BrokenProcessPool:
                    broken = True
            if broken:
                results = [_check_isolated(task) for task in chunk]
            for result in results:
                yield result
                if progress:
                    progress()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
