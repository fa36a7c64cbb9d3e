"""The project index: where a file's project is, which of its modules an import names, and those modules
read and parsed on demand (never imported, never run).

A project's root is the nearest folder above the file with a `pyproject.toml`, `setup.py`, `setup.cfg` or
`.git`. Absolute imports are looked up, in order, in the importing file's own folder (a script run as
`python train.py` imports its neighbours), the configured source folders (`src = [...]`, as in ruff), a
`src/` folder and the root; relative imports from the importing module's package. Only files inside the
project are ever read. A module that cannot be read or parsed provides nothing (the analysis stays
silent about what it would have provided); import cycles end where they close.
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.links import Links
from ..analysis.names import last
from ..analysis.source import SourceText
from ..analysis.structure import FOREIGN, ClassInfo, FunctionInfo, Structure, build_structure
from ..files import MAX_FILE_BYTES, ReadError, decode_source

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_MAX_DEPTH = 8  # re-exports followed from one module to the next
_MAX_LINKED_SIZE = 200_000  # characters: a bigger module is library code, not a helper of a training script
_MAX_LINKED = 16  # modules one file's analysis may follow names into
_SCAN_DEPTH = 2  # imports followed when looking for what a file's helpers may mention
_SCAN_FILES = 32

_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?[ \t]*([\w, \t]*)|import[ \t]+([\w., \t]+))",
                     re.MULTILINE)


def find_root(path: Path) -> Path:
    """The project root of a file: the nearest folder above it with a project marker, else its folder."""
    folder = Path(os.path.abspath(path)).parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return folder


@dataclass(eq=False)
class Module:
    path: Path
    text: str
    digest: str
    structure: Structure | None = None  # None until parsed, or when it does not parse
    parsed: bool = False
    imports: list[Path] | None = None  # the project files its text imports (scanned once)


@dataclass(eq=False)
class Project:
    root: Path
    src: tuple[Path, ...] = ()  # configured source folders
    _modules: dict[Path, Module | None] = field(default_factory=dict)
    _resolved: dict[tuple[str, int, str], Path | None] = field(default_factory=dict)

    @property
    def source_roots(self) -> list[Path]:
        roots = list(self.src)
        if (self.root / "src").is_dir():
            roots.append(self.root / "src")
        roots.append(self.root)
        return roots

    def contains(self, path: Path) -> bool:
        try:
            Path(path).relative_to(self.root)
        except ValueError:
            return False
        return True

    # -- files ----------------------------------------------------------------------------------------------
    def module(self, path: Path) -> Module | None:
        """The module at `path`, read (once; again when the file changed)."""
        path = Path(os.path.abspath(path))
        module = self._modules.get(path)
        try:
            info = os.stat(path)
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        if module is not None and getattr(module, "stamp", None) == stamp:
            return module
        module = None
        if info.st_size <= MAX_FILE_BYTES:
            try:
                data = path.read_bytes()
                text = decode_source(data)[0]
            except (OSError, ReadError):
                text = None
            if text is not None:
                module = Module(path, text, hashlib.sha1(data).hexdigest())
                module.stamp = stamp
        self._modules[path] = module
        return module

    def structure(self, path: Path) -> Structure | None:
        """The module at `path` parsed, its nodes marked as another module's; None if it does not parse."""
        module = self.module(path)
        if module is None:
            return None
        if not module.parsed:
            module.parsed = True
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tree = ast.parse(module.text, filename=str(path))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return None
            global PARSED
            PARSED += 1
            source = SourceText(module.text)
            structure = build_structure(tree, source.lines, self.display(path), source)
            structure.file = path
            for node in ast.walk(tree):
                setattr(node, FOREIGN, structure)
            module.structure = structure
        return module.structure

    def display(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- import resolution ----------------------------------------------------------------------------------
    def resolve(self, importer: Path, level: int, name: str) -> Path | None:
        """The file of module `name` imported from `importer` (`level` dots before it), inside the project."""
        folder = os.path.dirname(os.path.abspath(importer))
        key = (folder, level, name)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(folder, level, name)
        return self._resolved[key]

    def _resolve(self, folder: str, level: int, name: str) -> Path | None:
        parts = [p for p in name.split(".") if p]
        if level:
            for _ in range(level - 1):
                folder = os.path.dirname(folder)
            return self._file(folder, parts)
        if not parts:
            return None
        for base in [folder, *map(str, self.source_roots)]:
            found = self._file(base, parts)
            if found is not None:
                return found
        return None

    def _file(self, base: str, parts: list[str]) -> Path | None:
        folder = os.path.join(base, *parts)
        candidates = (folder + ".py", os.path.join(folder, "__init__.py")) if parts else (
            os.path.join(folder, "__init__.py"),)
        for candidate in candidates:
            if candidate.startswith(self._root_prefix) and os.path.isfile(candidate):
                return Path(candidate)
        return None

    @property
    def _root_prefix(self) -> str:
        return os.path.join(str(self.root), "")

    def split(self, importer: Path, qualified: str) -> tuple[Path, list[str]] | None:
        """`pkg.engine.train_one_epoch` -> (pkg/engine.py, ["train_one_epoch"]): the longest module prefix."""
        parts = qualified.split(".")
        for cut in range(len(parts), 0, -1):
            found = self.resolve(importer, 0, ".".join(parts[:cut]))
            if found is not None:
                return found, parts[cut:]
        return None

    def imported_files(self, path: Path, text: str) -> list[Path]:
        """The project files a file imports, and theirs, a few levels deep: found by scanning the text, not by
        parsing it (for the prefilter: what a file's helpers may mention)."""
        found: list[Path] = []
        start = Path(os.path.abspath(path))
        pending = [(start, self._scan(start, text), 0)]
        seen = {start}
        while pending and len(found) < _SCAN_FILES:
            importer, targets, depth = pending.pop(0)
            for target in targets:
                if target in seen:
                    continue
                seen.add(target)
                module = self.module(target)
                if module is None:
                    continue
                found.append(target)
                if depth + 1 < _SCAN_DEPTH:
                    if module.imports is None:
                        module.imports = self._scan(target, module.text)
                    pending.append((target, module.imports, depth + 1))
        return found

    def _scan(self, importer: Path, text: str) -> list[Path]:
        targets = []
        if "import" not in text:
            return targets
        for match in _IMPORT.finditer(text):
            dots, module, names, plain = match.groups()
            if plain is not None:
                candidates = [(0, item.split(" as ")[0].strip()) for item in plain.split(",")]
            else:
                level = len(dots)
                candidates = [(level, module)]
                candidates += [(level, f"{module}.{n.split(' as ')[0].strip()}" if module else
                                n.split(" as ")[0].strip()) for n in (names or "").split(",") if n.strip()]
            for level, name in candidates:
                if name or level:
                    target = self.resolve(importer, level, name)
                    if target is not None:
                        targets.append(target)
        return targets


_PROJECTS: dict[tuple[Path, tuple[Path, ...]], Project] = {}
PARSED = 0  # project modules parsed by this process (the engine keeps them out of the collector's way)


def project_for(path: Path, src: tuple[Path, ...] = ()) -> Project:
    """The project of a file (one per root and source folders, kept for the process)."""
    root = find_root(path)
    key = (root, tuple(src))
    project = _PROJECTS.get(key)
    if project is None:
        project = _PROJECTS[key] = Project(root, tuple(src))
    return project


class ProjectLinks(Links):
    """What the project says about the names one file imports (analysis.links.Links), and which project
    files its analysis read (for the cache: the file's findings depend on them)."""

    def __init__(self, project: Project, home: Path) -> None:
        self.project = project
        self.home = Path(os.path.abspath(home))
        self.read: dict[Path, str] = {}  # project file -> the digest of what was read
        self._memo: dict[tuple[int, str], FunctionInfo | ClassInfo | None] = {}
        self._linked: set[Path] = set()  # the project modules this file's analysis has followed names into

    def function(self, structure: Structure, key: str) -> FunctionInfo | None:
        if last(key)[:1].isupper():
            return None  # `Trainer(...)`, `Model.from_pretrained`: a class, or a class's method
        found = self._resolve(structure, key)
        return found if isinstance(found, FunctionInfo) else None

    def klass(self, structure: Structure, key: str) -> ClassInfo | None:
        if not last(key)[:1].isupper():
            return None  # classes are named in CapWords; `model.fit(...)` is not asking for one
        found = self._resolve(structure, key)
        return found if isinstance(found, ClassInfo) else None

    def star_imports(self, structure: Structure) -> dict[str, str]:
        names: dict[str, str] = {}
        for level, module in structure.imports.star:
            target = self._structure(self._path_of(structure), level, module)
            if target is not None:
                for local, qualified in target.imports.names.items():
                    if not local.startswith("_"):
                        names.setdefault(local, qualified)
        return names

    def helper_texts(self, text: str) -> list[str]:
        texts = []
        for path in self.project.imported_files(self.home, text):
            module = self.project.module(path)
            if module is not None:
                self.read[path] = module.digest
                texts.append(module.text)
        return texts

    # -- resolution -----------------------------------------------------------------------------------------
    def _path_of(self, structure: Structure) -> Path:
        return getattr(structure, "file", None) or self.home  # only the project's modules carry their file

    def _structure(self, importer: Path, level: int, name: str) -> Structure | None:
        path = self.project.resolve(importer, level, name)
        return self._load(path) if path is not None else None

    def _load(self, path: Path) -> Structure | None:
        if Path(os.path.abspath(path)) == self.home:
            return None  # the file itself: its own functions are local
        module = self.project.module(path)
        if module is None or len(module.text) > _MAX_LINKED_SIZE:
            return None  # library-scale modules are followed like a library's: not at all
        if module.path not in self._linked:
            if len(self._linked) >= _MAX_LINKED:
                return None  # enough modules for one file: what the others would say stays unknown
            self._linked.add(module.path)
        structure = self.project.structure(path)
        module = self.project.module(path)
        if module is not None:
            self.read[Path(os.path.abspath(path))] = module.digest
        return structure

    def _resolve(self, structure: Structure, key: str, depth: int = 0):
        memo_key = (id(structure), key)
        if memo_key in self._memo:
            return self._memo[memo_key]
        self._memo[memo_key] = None  # a cycle resolves to nothing
        found = self._find(structure, key, depth) if depth <= _MAX_DEPTH else None
        self._memo[memo_key] = found
        return found

    def _find(self, structure: Structure, key: str, depth: int):
        importer = self._path_of(structure)
        head, _, rest = key.partition(".")
        attributes = rest.split(".") if rest else []
        imports = structure.imports
        if head in imports.relative:
            level, module, name = imports.relative[head]
            base = self._structure(importer, level, module)
            if base is not None and (name in base.functions or name in base.classes):
                return self._member(base, [name, *attributes], depth)
            submodule = self._structure(importer, level, f"{module}.{name}" if module else name)
            if submodule is not None:
                return self._member(submodule, attributes, depth)
            return self._member(base, [name, *attributes], depth) if base is not None else None
        if head in imports.names:
            qualified = imports.names[head] + (f".{rest}" if rest else "")
            split = self.project.split(importer, qualified)
            if split is None:
                return None
            path, remainder = split
            target = self._load(path)
            return self._member(target, remainder, depth) if target is not None else None
        if not attributes:  # a name `from module import *` may have brought in
            for level, module in imports.star:
                target = self._structure(importer, level, module)
                if target is not None:
                    found = self._member(target, [head], depth)
                    if found is not None:
                        return found
        return None

    def _member(self, structure: Structure | None, attributes: list[str], depth: int):
        """What `attributes` name inside a module: a function, a class, or (a package's re-export) whatever its
        own import of that name names."""
        if structure is None or not attributes:
            return None
        name, rest = attributes[0], attributes[1:]
        if name in structure.functions:
            return None if rest else structure.functions[name]
        if name in structure.classes:
            return None if rest else structure.classes[name]
        importer = self._path_of(structure)
        if importer.name == "__init__.py":  # `pkg.engine` where engine is a module of the package
            submodule = self.project.resolve(importer, 1, name)
            if submodule is not None:
                return self._member(self._load(submodule), rest, depth + 1)
        imports = structure.imports
        if name in imports.names or name in imports.relative or imports.star:
            return self._resolve(structure, ".".join(attributes), depth + 1)
        return None
