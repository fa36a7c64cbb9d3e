"""`trainlint server`: a language server (LSP over stdio) for editors.

Only `trainlint server` imports this package: the protocol library (pygls) stays out of
`trainlint check`'s start-up.
"""
from __future__ import annotations

import gc
import sys


def serve() -> int:
    """Run the server on stdin/stdout until the client says exit."""
    try:
        from .lsp import build_server
    except ImportError as error:  # pygls is a dependency; a broken environment still gets one clear line
        print(f"trainlint: error: the language server needs pygls>=2.1 ({error})", file=sys.stderr)
        return 2
    server = build_server()
    # The server's own objects (pygls, the protocol's many types) live as long as it does: keep them out
    # of every collection. A syntax tree is many small objects without cycles: collect less often while
    # one is built, as `trainlint check` does (~10% of a lint goes to the collector otherwise).
    gc.freeze()
    gc.set_threshold(max(gc.get_threshold()[0], 20_000), *gc.get_threshold()[1:])
    # stdout carries the protocol: anything else printed there (a stray print in a dependency) would
    # corrupt it, so the rest of the process writes to stderr.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    server.start_io(sys.stdin.buffer, protocol_out)
    return 0
