"""Model facts the optimizer rules ask for: what a build is held over, the fate of each scheduler, and the
guard of an accumulated step."""
from __future__ import annotations

import ast
import textwrap

import pytest

from trainlint.analysis import ScriptModel
from trainlint.analysis.accumulation import accumulation_guard
from trainlint.analysis.builds import built_over
from trainlint.analysis.events import BUILD, OPT_STEP
from trainlint.analysis.roles import OPTIMIZER, SCHEDULER
from trainlint.analysis.schedulers import HANDED, IDLE, STEPPED


def model_of(source: str) -> ScriptModel:
    source = textwrap.dedent(source)
    return ScriptModel(ast.parse(source), source)


@pytest.mark.parametrize("call, kind, keys, complete", [
    ("torch.optim.Adam(model.parameters())", OPTIMIZER, ["model"], True),
    ("torch.optim.Adam(filter(lambda p: p.requires_grad, net.fc.parameters()))", OPTIMIZER, ["net.fc"], True),
    ("torch.optim.SGD([{'params': a.parameters()}, {'params': b.parameters(), 'lr': 1e-3}])", OPTIMIZER,
     ["b", "a"], True),
    ("torch.optim.Adam([delta], lr=0.01)", OPTIMIZER, ["delta"], True),
    ("torch.optim.Adam(get_params(model))", OPTIMIZER, [], False),
    ("keras.optimizers.Adam(1e-3)", OPTIMIZER, [], True),
    ("torch.optim.Adam(lr=1e-3)", OPTIMIZER, [], False),
    ("torch.optim.lr_scheduler.StepLR(optimizer, 30)", SCHEDULER, ["optimizer"], True),
])
def test_built_over_names_what_the_object_holds(call, kind, keys, complete):
    node = ast.parse(call, mode="eval").body
    assert built_over(node, kind, ast.unparse(node.func)) == (keys, complete)


def test_build_events_carry_the_caller_identities_of_a_helper_build():
    model = model_of("""\
        import torch
        def make(net):
            return torch.optim.Adam(net.parameters())
        for epoch in range(3):
            opt = make(model)
            opt.step()
        """)
    [build] = model.of_kind(BUILD)
    assert build.detail["over"] == [("net", "model")]
    assert build.context.loops and model.of_kind(OPT_STEP)[0].role.call is build.node


def test_scheduler_fates():
    model = model_of("""\
        import torch
        a = torch.optim.lr_scheduler.StepLR(opt, 10)
        b = torch.optim.lr_scheduler.StepLR(opt, 10)
        c = torch.optim.lr_scheduler.StepLR(opt, 10)
        d = torch.optim.lr_scheduler.StepLR(opt, 10)
        a.step()
        train(b)
        print(c.get_last_lr())
        if d is not None:
            pass
        """)
    assert [(s.name, s.fate) for s in model.scheduler_builds] == [
        ("a", STEPPED), ("b", HANDED), ("c", IDLE), ("d", IDLE)]


@pytest.mark.parametrize("test, divisor, counter", [
    ("(i + 1) % accum == 0", "accum", "i"),
    ("step % args.n == args.n - 1", "args.n", "step"),
    ("not (i + 1) % 4", "4", "i"),
    ("(i + 1) % accum == 0 or i + 1 == len(loader)", "accum", "i"),
    ("i % 8 == 7", "8", "i"),
    ("i % 100 == 1", None, None),
    ("(i + 1) % 1 == 0", None, None),
    ("i > 10", None, None),
])
def test_accumulation_guards(test, divisor, counter):
    model = model_of(f"""\
        for i, x in enumerate(loader):
            if {test}:
                optimizer.step()
        """)
    [step] = model.of_kind(OPT_STEP)
    branch, arm = step.context.guards[0]
    guard = accumulation_guard(branch, arm)
    if divisor is None:
        assert guard is None
    else:
        assert (ast.unparse(guard.divisor), guard.counter) == (divisor, counter)
