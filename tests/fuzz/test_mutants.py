"""Line mutants of the repository's own training scripts keep every property of fuzz_properties.

A sample of the mutants of fixtures/**/*.py and examples/*.py (delete, duplicate, swap, dedent, indent,
rename, break / continue / return inserted, wrapped in `if x:`), the same sample on every run; every
other mutant is fixed with unsafe fixes too. All failures are collected and shown with their inputs.
TRAINLINT_FUZZ_EXAMPLES scales the sample (see README.md in this folder)."""
from __future__ import annotations

from fuzz_mutants import OPERATORS, sample, scripts, sites
from fuzz_properties import Tally, budget, check


def test_mutants_of_the_training_scripts_keep_every_property():
    mutants = sample(budget(0.5))
    tally, failures = Tally(), []
    for index, mutant in enumerate(mutants):
        try:
            tally.add(mutant.label, mutant.source, check(mutant.source, mutant.label, unsafe=index % 2 == 1))
        except AssertionError as failure:
            failures.append(str(failure))
    print(tally.report())
    assert not failures, f"{len(failures)} of {len(mutants)} mutants broke a property:\n\n" + "\n\n".join(failures)
    assert tally.outcomes["fixed"] > 0, "no mutant was ever fixed: the sample no longer reaches the rules"
    tally.assert_refusals_rare()


def test_the_mutant_sample_covers_every_operator_and_is_the_same_on_every_run():
    """A fuzz run that changes with the weather cannot be reproduced from its failure."""
    first, second = sample(200), sample(200)
    assert [m.label for m in first] == [m.label for m in second]
    assert [m.source for m in first] == [m.source for m in second]
    assert {m.label.split(":")[2] for m in first} == set(OPERATORS)
    assert len(scripts()) > 40 and len(sites(scripts())) > 10_000
