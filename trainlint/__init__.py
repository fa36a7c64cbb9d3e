"""trainlint: a static linter for PyTorch and Keras training scripts.

    >>> import trainlint
    >>> trainlint.lint_source(open("train.py").read(), path="train.py")
    >>> trainlint.fix_source(source)
"""
__version__ = "0.1.0"  # before the imports: the engine's cache keys on it

from .config import Settings
from .diagnostics import Finding
from .engine import FixError, UnparsableSource, fix_source, lint_source

__all__ = ["Finding", "FixError", "Settings", "UnparsableSource", "__version__", "fix_source", "lint_source"]
