"""Generated Python programs (hypothesmith), alone and spliced into training-loop templates, keep every
property of fuzz_properties: linting never raises, positions are inside the text, fixes compile, settle
in one run, and do not come back; refused fixes are rare.

Reproducible: derandomized, no example database. TRAINLINT_FUZZ_EXAMPLES scales the number of examples
(see README.md in this folder)."""
from __future__ import annotations

import functools

import hypothesmith
import pytest
from fuzz_properties import Tally, budget, check
from fuzz_templates import TEMPLATES, holes, splice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# hypothesmith compiles what it generates; the SyntaxWarnings of that generated code are not ours.
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")


@functools.lru_cache(maxsize=None)
def grammar_programs():
    """One strategy for all tests: building it compiles the Python grammar (seconds)."""
    return hypothesmith.from_grammar()


def fuzz_settings(share: float) -> settings:
    return settings(max_examples=budget(share), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large], print_blob=False)


def test_programs_from_the_grammar_keep_every_property():
    tally = Tally()

    @fuzz_settings(0.15)
    @given(grammar_programs())
    def one(source):
        tally.add("from_grammar", source, check(source, "from_grammar"))

    one()
    print(tally.report())
    tally.assert_refusals_rare()


def test_programs_from_syntax_trees_keep_every_property():
    """from_node builds programs from libcst nodes: fewer, slower, but with the odd shapes of real
    syntax trees (decorators, comprehensions, walrus, async) that the grammar rarely reaches."""
    tally = Tally()

    @fuzz_settings(0.05)
    @given(hypothesmith.from_node())
    def one(source):
        tally.add("from_node", source, check(source, "from_node"))

    one()
    print(tally.report())
    tally.assert_refusals_rare()


@st.composite
def spliced_programs(draw):
    """(label, source): a generated program at one hole of one buggy training-loop template."""
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    template = TEMPLATES[name]
    hole = draw(st.integers(0, holes(template) - 1))
    code = draw(grammar_programs())
    return f"{name} template, hole {hole}", splice(template, hole, code)


def test_generated_programs_inside_training_loops_keep_every_property():
    """The rules see their training events next to arbitrary code: a shadowed optimizer, an early
    `return`, a nested class, a loop that never ends. Safe and unsafe fixes both run."""
    tally = Tally()

    @fuzz_settings(0.2)
    @given(spliced_programs(), st.booleans())
    def one(spliced, unsafe):
        label, source = spliced
        tally.add(label, source, check(source, label, unsafe=unsafe))

    one()
    print(tally.report())
    assert tally.outcomes["fixed"] > 0, "no fix was ever applied: the templates no longer trigger the rules"
    tally.assert_refusals_rare()
