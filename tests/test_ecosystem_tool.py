"""The ecosystem check's own logic (bench/ecosystem): how findings meet their reviews, what counts as a
regression, the diff against a baseline run, the exit status, and the checkout of pinned trees.
Built on tiny data in tmp_path: no network, no .ecosystem/ folder."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ECOSYSTEM = Path(__file__).resolve().parent.parent / "bench" / "ecosystem"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"ecosystem_{name}", ECOSYSTEM / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run = _load("run")
checkout = _load("checkout")
HEADER = "repo\tpath\tcode\tline\tverdict\treason\n"


def finding(repo="a/x", path="train.py", code="TL001", line="loss.backward()", row=10, cell=None):
    return {"repo": repo, "path": path, "code": code, "row": row, "column": 5, "cell": cell,
            "message": "m", "line": line}


def review(repo="a/x", path="train.py", code="TL001", line="loss.backward()", verdict="true", row=2):
    return run.Review(repo, path, code, line, verdict, "why", row)


def a_run(findings, repos=(("a/x", "research"), ("b/y", "keras"))):
    return {"repos": [{"name": n, "group": g, "commit": "c" * 40, "error": None} for n, g in repos],
            "findings": findings}


# --- matching findings to reviews ------------------------------------------------------------------

def test_a_review_matches_by_line_text_not_by_row():
    matched = run.match([finding(row=99)], [review()])
    assert [r.verdict for r in matched.verdicts] == ["true"]
    assert matched.leftover == []


def test_a_review_of_another_rule_or_file_does_not_match():
    matched = run.match([finding()], [review(code="TL002"), review(path="other.py")])
    assert matched.verdicts == [None]


def test_duplicate_keys_are_counted_one_review_per_occurrence():
    """The same line text reported twice in one file needs two rows; one row covers one of them."""
    twice = [finding(row=10), finding(row=20)]
    one = run.match(twice, [review()])
    assert [run.verdict_name(r) for r in one.verdicts] == ["true", "unreviewed"]
    two = run.match(twice, [review(row=2), review(verdict="false", row=3)])
    assert [run.verdict_name(r) for r in two.verdicts] == ["true", "false"]


def test_a_reviewed_true_finding_that_no_longer_occurs_is_listed_as_disappeared():
    reviews = [review(), review(line="opt.step()", verdict="false", row=3), review(line="x", row=4)]
    matched = run.match([finding(line="x")], reviews)
    assert [(r.line, r.verdict) for r in matched.disappeared_true] == [("loss.backward()", "true")]
    assert {r.line for r in matched.leftover} == {"loss.backward()", "opt.step()"}


def test_one_of_two_identical_true_findings_disappearing_is_listed():
    matched = run.match([finding()], [review(row=2), review(row=3)])
    assert [r.source_row for r in matched.disappeared_true] == [3]


def test_reviews_of_repositories_outside_the_run_are_not_disappeared():
    matched = run.match([], [review(repo="b/y")], repos={"a/x"})
    assert matched.disappeared_true == []


# --- exit status -----------------------------------------------------------------------------------

def test_exit_status_is_0_when_all_findings_are_reviewed_true_or_debatable():
    matched = run.match([finding(), finding(line="y")], [review(), review(line="y", verdict="debatable")])
    assert run.exit_status(matched, []) == 0


@pytest.mark.parametrize("reviews", [[], [review(verdict="false")]], ids=["unreviewed", "false"])
def test_exit_status_is_1_for_an_unreviewed_or_a_false_finding(reviews):
    assert run.exit_status(run.match([finding()], reviews), []) == 1


def test_exit_status_is_2_when_a_repository_could_not_be_linted():
    assert run.exit_status(run.match([], []), ["a/x"]) == 2


# --- reviewed.tsv ----------------------------------------------------------------------------------

def test_reviews_file_is_read_with_keys_normalised_like_findings(tmp_path):
    path = tmp_path / "reviewed.tsv"
    path.write_text(HEADER + "a/x\ttrain.py\tTL001\t  loss.backward()  \ttrue\tno zero_grad\twith a tab\n")
    [loaded] = run.load_reviews(path)
    assert loaded.key == ("a/x", "train.py", "TL001", "loss.backward()")
    assert loaded.reason == "no zero_grad\twith a tab"


def test_a_review_with_an_unknown_verdict_is_an_error_not_a_silent_miss(tmp_path):
    path = tmp_path / "reviewed.tsv"
    path.write_text(HEADER + "a/x\ttrain.py\tTL001\tloss.backward()\tyes\t\n")
    with pytest.raises(SystemExit, match="reviewed.tsv:2: verdict must be one of"):
        run.load_reviews(path)


# --- baseline diff ---------------------------------------------------------------------------------

def test_baseline_diff_lists_added_and_removed_per_repository_counting_duplicates():
    old = a_run([finding(), finding(line="gone"), finding(repo="b/y", code="TL007", line="model.fit(x)")])
    new = a_run([finding(row=11), finding(row=30), finding(repo="b/y", code="TL007", line="model.fit(x)")])
    diff = run.baseline_diff(old, new)
    assert {repo: [f["line"] for f in fs] for repo, fs in diff.added.items()} == {"a/x": ["loss.backward()"]}
    assert {repo: [f["line"] for f in fs] for repo, fs in diff.removed.items()} == {"a/x": ["gone"]}
    assert diff.commit_changed == {}


def test_baseline_diff_ignores_repositories_the_other_run_did_not_lint():
    old = a_run([finding(), finding(repo="b/y")])
    new = a_run([finding()], repos=(("a/x", "research"),))
    diff = run.baseline_diff(old, new)
    assert diff.added == {} and diff.removed == {}


def test_baseline_diff_notes_a_repository_linted_at_another_commit():
    old, new = a_run([]), a_run([])
    new["repos"][0]["commit"] = "d" * 40
    assert run.baseline_diff(old, new).commit_changed == {"a/x": ("c" * 40, "d" * 40)}


# --- the command over an earlier run (--from): reports and exit codes -------------------------------

def test_main_from_a_findings_file_reports_gates_and_diffs(tmp_path, capsys):
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps(a_run([finding(), finding(repo="b/y", code="TL007", line="model.fit(x)")])))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(a_run([finding()])))
    reviewed = tmp_path / "reviewed.tsv"
    reviewed.write_text(HEADER + "a/x\ttrain.py\tTL001\tloss.backward()\ttrue\tno zero_grad\n")

    status = run.main(["--from", str(findings), "--reviewed", str(reviewed), "--baseline", str(baseline)])
    out = capsys.readouterr().out
    assert status == 1
    assert "== unreviewed findings: 1\nb/y [keras] train.py:10:5  TL007  m\n    | model.fit(x)" in out
    assert "b/y: +1 -0\n  + train.py:10  TL007  model.fit(x)" in out

    reviewed.write_text(reviewed.read_text() + "b/y\ttrain.py\tTL007\tmodel.fit(x)\tdebatable\tfit in eval\n")
    assert run.main(["--from", str(findings), "--reviewed", str(reviewed), "-q"]) == 0
    assert run.main(["--from", str(findings), "--reviewed", str(reviewed), "--group", "research"]) == 0


def test_table_markdown_counts_verdicts_per_rule_and_per_group(tmp_path, capsys):
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps(a_run([finding(), finding(line="y"), finding(repo="b/y", code="TL007")])))
    reviewed = tmp_path / "reviewed.tsv"
    reviewed.write_text(HEADER + "a/x\ttrain.py\tTL001\tloss.backward()\ttrue\t\na/x\ttrain.py\tTL001\ty\tfalse\t\n")
    assert run.main(["--from", str(findings), "--reviewed", str(reviewed), "--table-markdown"]) == 0
    out = capsys.readouterr().out
    assert "| TL001 | 1 | 1 | 0 | 0 | 2 | 50% |" in out
    assert "| TL007 | 0 | 0 | 0 | 1 | 1 | - |" in out
    assert "| keras | TL007 | 0 | 0 | 0 | 1 | 1 | - |" in out


# --- reading the reported line ---------------------------------------------------------------------

def test_the_reported_line_of_a_notebook_is_read_from_its_cell(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "source": ["# title"]},
                          {"cell_type": "code", "source": ["import torch\n", "\tloss.backward()\n"]}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "s.py").write_bytes(b"a = 1\r\n  b = 2\r\n")
    assert run.read_reported_line(tmp_path, "nb.ipynb", 2, 2) == "loss.backward()"
    assert run.read_reported_line(tmp_path, "s.py", 2, None) == "b = 2"
    assert run.read_reported_line(tmp_path, "s.py", 9, None) == ""


# --- checkout from a local mirror ------------------------------------------------------------------

def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def mirror(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "train.py").write_text("import torch\n")
    (source / "big.bin").write_bytes(b"\0" * 100)
    _git("init", "-q", cwd=source)
    _git("add", ".", cwd=source)
    _git("commit", "-q", "-m", "one", cwd=source)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True).stdout.strip()
    root = tmp_path / "mirrors"
    root.mkdir()
    _git("clone", "-q", "--bare", str(source), str(root / "own+proj" / "repo"), cwd=tmp_path)
    return root, commit


def test_checkout_materialises_the_commit_once_and_marks_it(mirror, tmp_path):
    root, commit = mirror
    repo = checkout.Repo("own/proj", commit, "research")
    ecosystem = tmp_path / "eco"
    assert checkout.materialise(repo, ecosystem, root) == "written"
    tree = ecosystem / "own__proj"
    assert (tree / "pkg" / "train.py").read_text() == "import torch\n"
    assert checkout.marker_commit(tree) == commit
    assert checkout.materialise(repo, ecosystem, root) == "up to date"


def test_checkout_skips_blobs_the_mirror_lacks_and_lists_them(mirror, tmp_path):
    root, commit = mirror
    git_dir = root / "own+proj" / "repo"
    blob = subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", f"{commit}:big.bin"],
                          capture_output=True, text=True).stdout.strip()
    for pack in (git_dir / "objects" / "pack").glob("*.pack"):  # a fresh clone packs: unpack to delete one object
        data = pack.read_bytes()
        for stale in pack.parent.glob(pack.stem + ".*"):
            stale.unlink()
        subprocess.run(["git", f"--git-dir={git_dir}", "unpack-objects", "-q"], input=data, check=True)
    (git_dir / "objects" / blob[:2] / blob[2:]).unlink()

    repo = checkout.Repo("own/proj", commit, "research")
    done = checkout.materialise(repo, tmp_path / "eco", root)
    tree = tmp_path / "eco" / "own__proj"
    assert "1 file(s) missing" in done
    assert (tree / "pkg" / "train.py").is_file() and not (tree / "big.bin").exists()
    assert "missing big.bin" in (tree / checkout.MARKER).read_text()


def test_checkout_without_a_mirror_clones_and_checks_out_the_commit(mirror, tmp_path):
    _, commit = mirror
    (tmp_path / "src" / "pkg" / "train.py").write_text("import torch  # changed after the pinned commit\n")
    _git("commit", "-q", "-am", "two", cwd=tmp_path / "src")
    repo = checkout.Repo("own/proj", commit, "research")
    url = (tmp_path / "src").as_uri()  # stands for https://github.com/{name}
    done = checkout.materialise(repo, tmp_path / "eco", None, clone_url=url)
    tree = tmp_path / "eco" / "own__proj"
    assert done == "written"
    assert (tree / "pkg" / "train.py").read_text() == "import torch\n"
    assert (tree / ".git").is_dir() and not any((tree / ".git").iterdir())  # a bare marker of the project root


def test_corpus_rejects_a_malformed_pin(tmp_path):
    bad = tmp_path / "repos.toml"
    bad.write_text('[[repo]]\nname = "own/proj"\ncommit = "abc"\ngroup = "research"\n')
    with pytest.raises(checkout.CorpusError, match="40"):
        checkout.load_repos(bad)


def test_the_pinned_corpus_file_is_well_formed():
    repos = checkout.load_repos(ECOSYSTEM / "repos.toml")
    assert len(repos) >= 68
    assert {"legacy", "frameworks", "research", "courses", "notebooks", "keras", "tabular"} <= {r.group for r in repos}
