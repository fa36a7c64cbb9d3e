"""Fixes: edits on the CST that rules propose, applied by the engine, and the safe write to disk.

A rule describes a fix as edits on the statements it saw (insert before/after, remove, replace a
node); `apply_edits` performs them in one transform of the same tree, so a fix never re-parses or
re-walks text. Writing is atomic and keeps the file's encoding, BOM, newlines and mode.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import libcst as cst

SAFE = "safe"
UNSAFE = "unsafe"

Statement = Union[cst.BaseStatement, cst.BaseSmallStatement]


@dataclass(frozen=True, eq=False)
class InsertBefore:
    anchor: cst.BaseStatement  # a statement of an indented block or the module
    statement: cst.BaseStatement


@dataclass(frozen=True, eq=False)
class InsertAfter:
    anchor: cst.BaseStatement
    statement: cst.BaseStatement


@dataclass(frozen=True, eq=False)
class Remove:
    statement: cst.BaseStatement


@dataclass(frozen=True, eq=False)
class Replace:
    node: cst.CSTNode
    replacement: cst.CSTNode


Edit = Union[InsertBefore, InsertAfter, Remove, Replace]


@dataclass(eq=False)
class Fix:
    message: str
    edits: list[Edit]
    applicability: str = SAFE


def statement(code: str) -> cst.BaseStatement:
    """A statement to insert, from source text such as `optimizer.zero_grad()`."""
    return cst.parse_statement(code if code.endswith("\n") else code + "\n")


def move_before(node: cst.BaseStatement, anchor: cst.BaseStatement) -> list[Edit]:
    return [Remove(node), InsertBefore(anchor, node)]


def move_after(node: cst.BaseStatement, anchor: cst.BaseStatement) -> list[Edit]:
    return [Remove(node), InsertAfter(anchor, node)]


class _EditApplier(cst.CSTTransformer):
    def __init__(self, edits: list[Edit]) -> None:
        super().__init__()
        self.before: dict[int, list[cst.BaseStatement]] = {}
        self.after: dict[int, list[cst.BaseStatement]] = {}
        self.removed: set[int] = set()
        self.replaced: dict[int, cst.CSTNode] = {}
        self.pending = 0
        for edit in edits:
            if isinstance(edit, InsertBefore):
                self.before.setdefault(id(edit.anchor), []).append(edit.statement)
            elif isinstance(edit, InsertAfter):
                self.after.setdefault(id(edit.anchor), []).append(edit.statement)
            elif isinstance(edit, Remove):
                self.removed.add(id(edit.statement))
            else:
                self.replaced[id(edit.node)] = edit.replacement
            self.pending += 1
        self.done = 0

    def on_leave(self, original_node, updated_node):
        replacement = self.replaced.get(id(original_node))
        if replacement is not None:
            self.done += 1
            return replacement
        if isinstance(updated_node, (cst.IndentedBlock, cst.Module)) and self._touches(original_node.body):
            return updated_node.with_changes(body=self._rebuild(original_node.body, updated_node.body))
        return updated_node

    def _touches(self, body) -> bool:
        return any(id(s) in self.before or id(s) in self.after or id(s) in self.removed for s in body)

    def _rebuild(self, originals, updated) -> list:
        body = []
        for original, new in zip(originals, updated):
            inserted = self.before.get(id(original), [])
            self.done += len(inserted)
            body.extend(inserted)
            if id(original) in self.removed:
                self.done += 1
            else:
                body.append(new)
            after = self.after.get(id(original), [])
            self.done += len(after)
            body.extend(after)
        return body


def apply_edits(module: cst.Module, edits: list[Edit]) -> cst.Module:
    """The module with all edits applied; raises ValueError if an edit's anchor was not found."""
    applier = _EditApplier(edits)
    result = module.visit(applier)
    if applier.done != applier.pending:
        raise ValueError("a fix refers to code that is not in a block it can edit")
    return result


def write_atomic(path: Path, data: bytes, expect: tuple[int, int, int] | None = None) -> None:
    """Replace the file at `path` with `data`, so that a crash leaves either the old or the new file.

    The bytes go to a temporary file in the same folder, are flushed to disk, get the file's mode (and,
    when allowed, its owner), and then take its place by an atomic rename. A symbolic link is followed:
    its target is rewritten, the link stays. `expect` is the file's (inode, size, mtime_ns) when it was
    read: if it changed since, nothing is written (someone else edited it). Raises OSError.
    """
    target = Path(os.path.realpath(path))
    info = os.stat(target)
    if expect is not None and (info.st_ino, info.st_size, info.st_mtime_ns) != tuple(expect):
        raise OSError(errno.EBUSY, "the file changed on disk while it was being checked")
    if not os.access(target, os.W_OK):
        raise OSError(errno.EACCES, "the file is read-only")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".trainlint-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown"):
            try:
                os.chown(tmp, info.st_uid, info.st_gid)
            except OSError:
                pass  # only root may give a file away; the mode is kept either way
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
