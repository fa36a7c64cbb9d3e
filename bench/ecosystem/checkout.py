"""Materialise every repository pinned in repos.toml at its commit, into .ecosystem/<owner>__<name>/.

Why a plain tree and not a clone: the check lints files, so all it needs is the files of one commit;
a tree without .git is what a user's checkout looks like to trainlint and costs a fraction of the disk.

Two sources:
- `--mirror-root DIR`: local bare git directories (one per repository, found by owner/name), read with
  `git archive <commit>`. Blobs the mirror lacks (some mirrors leave out very large files) are skipped:
  the tree is then written blob by blob and the skipped paths are listed in the marker file.
- otherwise GitHub: `git clone --filter=blob:none` of https://github.com/<owner>/<name>, checkout of the
  commit, and the .git folder removed.

Idempotent: each tree carries a marker file with its commit; a tree already at the pinned commit is left
alone, any other is replaced. A tree is built in a temporary folder and renamed into place, so an
interrupted run never leaves a half-written tree that looks complete.

    python bench/ecosystem/checkout.py --mirror-root /work/.mirror
    python bench/ecosystem/checkout.py --root /path/to/another/checkout --repos pytorch/examples
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY_ROOT = HERE.parent.parent
CLONE_URL = "https://github.com/{name}"

sys.path.insert(0, str(HERE))
# A sibling module, not a package: these scripts run as files.
from corpus import MARKER, CorpusError, Repo, folder_name, load_repos, marker_commit, select_repos  # noqa: E402


class CheckoutError(Exception):
    pass


def find_git_dir(mirror_root: Path, name: str) -> Path | None:
    """The git directory of owner/name under a mirror root. Accepts the layouts in use:
    <root>/owner+name/repo (bare or with .git inside), <root>/owner+name, <root>/owner__name,
    <root>/owner/name(.git)."""
    owner, repo = name.split("/", 1)
    bases = [mirror_root / f"{owner}+{repo}" / "repo", mirror_root / f"{owner}+{repo}",
             mirror_root / f"{owner}__{repo}", mirror_root / owner / repo, mirror_root / owner / f"{repo}.git"]
    for base in bases:
        for candidate in (base / ".git", base):
            if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
                return candidate
    return None


def _git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, **kwargs)


def _safe_member(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """Keep regular files and folders inside the destination; drop links that point out of it, devices."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        try:
            return data_filter(member, destination)
        except tarfile.FilterError:
            return None
    if member.islnk() or member.issym() or not (member.isfile() or member.isdir()):  # pragma: no cover - old Pythons
        return None
    if member.name.startswith("/") or ".." in Path(member.name).parts:  # pragma: no cover
        return None
    return member


def _from_archive(git_dir: Path, commit: str, destination: Path) -> bool:
    """`git archive <commit> | tar -x`, in Python so that it runs wherever git does. False when the
    mirror lacks objects of that tree (the caller then writes it blob by blob)."""
    process = subprocess.Popen(["git", f"--git-dir={git_dir}", "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                kept = _safe_member(member, str(destination))
                if kept is not None:
                    archive.extract(kept, destination, set_attrs=False)
    except tarfile.TarError:
        pass  # a truncated stream: git failed part way; its exit status says so below
    finally:
        process.stdout.close()
        process.wait()
    return process.returncode == 0


def _from_blobs(git_dir: Path, commit: str, destination: Path) -> list[str]:
    """Write the commit's tree file by file with `git cat-file --batch`; returns the paths whose blobs
    the mirror does not have. Symbolic links and submodules are not written (as `_safe_member` drops
    links that could point out of the tree)."""
    listing = _git(f"--git-dir={git_dir}", "ls-tree", "-r", "-z", "--full-tree", commit)
    if listing.returncode != 0:
        raise CheckoutError(listing.stderr.decode(errors="replace").strip())
    entries = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, path = record.split(b"\t", 1)
        mode, kind, sha = meta.split()
        if kind == b"blob" and mode in (b"100644", b"100755"):
            entries.append((mode, sha.decode(), os.fsdecode(path)))
    missing: list[str] = []
    batch = subprocess.Popen(["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert batch.stdin is not None and batch.stdout is not None
    try:
        for mode, sha, path in entries:
            batch.stdin.write(sha.encode() + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":
                missing.append(path)
                continue
            content = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)  # the newline after the content
            target = destination / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            if mode == b"100755":
                target.chmod(0o755)
    finally:
        batch.stdin.close()
        batch.wait()
    return missing


def _from_mirror(git_dir: Path, commit: str, destination: Path) -> list[str]:
    if _git(f"--git-dir={git_dir}", "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise CheckoutError(f"commit {commit} is not in the mirror {git_dir}")
    if _from_archive(git_dir, commit, destination):
        return []
    shutil.rmtree(destination)
    destination.mkdir()
    return _from_blobs(git_dir, commit, destination)


def _from_clone(url: str, commit: str, destination: Path) -> list[str]:
    cloned = _git("clone", "--quiet", "--filter=blob:none", "--no-checkout", url, str(destination))
    if cloned.returncode != 0:
        raise CheckoutError(cloned.stderr.decode(errors="replace").strip())
    checkout = _git("-C", str(destination), "checkout", "--quiet", "--detach", commit)
    if checkout.returncode != 0:  # a commit no branch reaches any more: ask for it by name
        fetched = _git("-C", str(destination), "fetch", "--quiet", "--filter=blob:none", "origin", commit)
        checkout = _git("-C", str(destination), "checkout", "--quiet", "--detach", commit)
        if fetched.returncode != 0 or checkout.returncode != 0:
            raise CheckoutError(checkout.stderr.decode(errors="replace").strip())
    shutil.rmtree(destination / ".git")
    return []


def materialise(repo: Repo, ecosystem: Path, mirror_root: Path | None, clone_url: str = CLONE_URL) -> str:
    """Bring one repository's tree to its pinned commit; returns what was done, for the log."""
    tree = ecosystem / folder_name(repo.name)
    if marker_commit(tree) == repo.commit:
        return "up to date"
    ecosystem.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder_name(repo.name)}.", dir=ecosystem))
    umask = os.umask(0)
    os.umask(umask)
    temporary.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make the tree private to whoever checked it out
    try:
        if mirror_root is not None:
            git_dir = find_git_dir(mirror_root, repo.name)
            if git_dir is None:
                raise CheckoutError(f"no mirror of {repo.name} under {mirror_root}")
            missing = _from_mirror(git_dir, repo.commit, temporary)
            source = str(git_dir)
        else:
            shutil.rmtree(temporary)
            source = clone_url.format(name=repo.name)
            missing = _from_clone(source, repo.commit, temporary)
        lines = [f"commit {repo.commit}", f"source {source}", *(f"missing {path}" for path in missing)]
        (temporary / MARKER).write_text("\n".join(lines) + "\n", encoding="utf-8")
        # An empty .git folder, as a user's clone has one: it marks the repository's top as its project root,
        # so trainlint's project layer resolves its imports there and never in a folder above .ecosystem/.
        (temporary / ".git").mkdir(exist_ok=True)
        if tree.exists():
            shutil.rmtree(tree)
        temporary.rename(tree)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    done = "written"
    if missing:
        done += f" ({len(missing)} file(s) missing from the mirror, listed in {MARKER})"
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror-root", type=Path, help="folder of local git mirrors (else clone from GitHub)")
    parser.add_argument("--root", type=Path, default=REPOSITORY_ROOT,
                        help="folder under which .ecosystem/ is made (default: this repository's root)")
    parser.add_argument("--repos-file", type=Path, default=HERE / "repos.toml")
    parser.add_argument("--repos", help="comma-separated owner/name list: only these")
    parser.add_argument("--group", help="only the repositories of this group")
    args = parser.parse_args(argv)

    repos = select_repos(load_repos(args.repos_file), args.repos, args.group)
    ecosystem = args.root / ".ecosystem"
    failed = []
    for repo in repos:
        try:
            done = materialise(repo, ecosystem, args.mirror_root)
        except (CheckoutError, OSError) as error:
            failed.append(repo.name)
            done = f"FAILED: {error}"
        print(f"{repo.name:<55} {done}", flush=True)
    print(f"{len(repos) - len(failed)} of {len(repos)} repositories in {ecosystem}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
