"""The CI recipes in docs/integrations.md are complete workflows that would run: their structure is what
GitHub Actions reads, every trainlint command in them is one trainlint accepts, the SARIF upload reads the
file trainlint wrote, and the problem matcher they register is the one the package ships."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from trainlint.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "integrations.md").read_text()
WORKFLOWS = {block.split("\n", 1)[0].lstrip("# ").strip(): yaml.safe_load(block)
             for block in re.findall(r"```yaml\n(.*?)```", DOC, re.S) if "jobs:" in block and "runs-on" in block
             and block.startswith("# .github/workflows/")}


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def trainlint_commands(workflow: dict) -> list[list[str]]:
    commands = []
    for step in steps(workflow):
        for line in step.get("run", "").splitlines():
            line = line.split(">")[0].strip()  # `... > trainlint.sarif`
            if line.startswith("trainlint "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_the_page_holds_complete_workflows_for_annotations_sarif_and_the_problem_matcher():
    assert set(WORKFLOWS) == {".github/workflows/trainlint.yml", ".github/workflows/trainlint-sarif.yml",
                              ".github/workflows/trainlint-matcher.yml"}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_has_the_shape_github_actions_reads(name):
    workflow = WORKFLOWS[name]
    # PyYAML (YAML 1.1) reads the key `on` as True; GitHub reads it as "on".
    assert set(workflow) - {"name", "on", True, "permissions", "jobs"} == set()
    assert workflow.get("on", workflow.get(True))
    for job in workflow["jobs"].values():
        assert job["runs-on"] and job["steps"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]
    commands = trainlint_commands(workflow)
    assert commands and any(step.get("run") == "pip install trainlint" for step in steps(workflow))
    for arguments in commands:
        parsed = build_parser().parse_args(arguments)  # exits (fails the test) on an argument trainlint refuses
        assert parsed.command == "check"


def test_sarif_workflow_uploads_the_file_trainlint_writes_with_the_permission_it_needs():
    workflow = WORKFLOWS[".github/workflows/trainlint-sarif.yml"]
    [job] = workflow["jobs"].values()
    assert job["permissions"]["security-events"] == "write"
    [lint] = [s for s in job["steps"] if "trainlint check" in s.get("run", "")]
    written = lint["run"].split(">")[1].strip()
    assert "--output-format sarif" in lint["run"] and "--exit-zero" in lint["run"]
    [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert upload["with"]["sarif_file"] == written


def test_matcher_workflow_registers_the_matcher_the_package_ships_and_prints_what_it_reads():
    workflow = WORKFLOWS[".github/workflows/trainlint-matcher.yml"]
    [register] = [s for s in steps(workflow) if "::add-matcher::" in s.get("run", "")]
    expression = re.search(r'python -c "(.*?)"\)', register["run"]).group(1)
    assert "'data' / 'problem-matcher.json'" in expression
    matchers = json.loads((ROOT / "trainlint" / "data" / "problem-matcher.json").read_text())["problemMatcher"]
    assert {m["owner"] for m in matchers} == {"trainlint", "trainlint-notebook"}
    [arguments] = trainlint_commands(workflow)
    assert build_parser().parse_args(arguments).output_format == "concise"
