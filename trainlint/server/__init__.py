"""`trainlint server`: a language server (LSP over stdio) for editors.

Only `trainlint server` imports this package: the protocol library (pygls) stays out of
`trainlint check`'s start-up.
"""
from __future__ import annotations

import sys


def serve() -> int:
    """Run the server on stdin/stdout until the client says exit."""
    try:
        from .lsp import build_server
    except ImportError as error:  # pygls is a dependency; a broken environment still gets one clear line
        print(f"trainlint: error: the language server needs pygls>=2.1 ({error})", file=sys.stderr)
        return 2
    server = build_server()
    # stdout carries the protocol: anything else printed there (a stray print in a dependency) would
    # corrupt it, so the rest of the process writes to stderr.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    server.start_io(sys.stdin.buffer, protocol_out)
    return 0
