"""Arbitrary characters inside a training script: control characters, form feeds, lone carriage
returns, NUL, line and paragraph separators, non-breaking and zero-width spaces, right-to-left marks,
emoji, a BOM in the middle, lone surrogates. Inserted as a line of their own, or appended to a line, of
a buggy template; every property of fuzz_properties holds (most such inputs are E999, some still parse)."""
from __future__ import annotations

from fuzz_properties import Tally, budget, check
from fuzz_templates import TEMPLATES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHARACTERS = st.one_of(
    st.characters(),
    st.sampled_from("\x00\ud800\x0b\x0c\r\n\t \\#'\"()[]{}:;\x85\u00a0\u2028\u2029\u200b\u200f\ufeff\U0001f600"),
)


@st.composite
def hostile_scripts(draw):
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    lines = TEMPLATES[name].split("\n")
    row = draw(st.integers(0, len(lines) - 1))
    text = draw(st.text(CHARACTERS, min_size=1, max_size=12))
    if draw(st.booleans()):
        lines.insert(row, lines[row][: len(lines[row]) - len(lines[row].lstrip())] + text)
        how = "inserted before"
    else:
        lines[row] += text
        how = "appended to"
    return f"{name} template, {text!r} {how} line {row + 1}", "\n".join(lines)


def test_hostile_characters_in_a_training_script_keep_every_property():
    tally = Tally()

    @settings(max_examples=budget(0.1), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=False)
    @given(hostile_scripts(), st.booleans())
    def one(script, unsafe):
        label, source = script
        tally.add(label, source, check(source, label, unsafe=unsafe))

    one()
    print(tally.report())
    assert tally.outcomes["parsed"] > 0 and tally.outcomes["parsed"] < tally.outcomes["inputs"]
    tally.assert_refusals_rare()
