"""The engine: per file, parse once, build the model once, run the selected rules, apply noqa and fixes.

A library: the CLI and the language server both call it. One room per job:
`parse` (text to tree, or E999), `analyse` (model and rules), `suppressions` (noqa), `edits` (fixes as
text edits), `fixing` (the verified fix loop), `run` (the library API and one file on disk), `pool`
(many files over all cores).
"""
from .fixing import FixError
from .parse import UnparsableSource
from .pool import check_files
from .run import check_file, fix_source, lint_source

__all__ = ["FixError", "UnparsableSource", "check_file", "check_files", "fix_source", "lint_source"]
