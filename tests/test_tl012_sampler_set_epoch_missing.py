"""TL012 sampler-set-epoch-missing: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import autofixed, fixtures, fix_snippet, rows, run_both

codes = partial(rows, code="TL012")


@pytest.mark.parametrize("path", fixtures("TL012"), ids=lambda p: p.stem)
def test_runtime_every_epoch_draws_the_same_permutation_and_the_fix_changes_it(path, tmp_path):
    buggy, fixed = run_both(path, autofixed(path, tmp_path))
    assert buggy["epochs"] == 3 and buggy["identical_orders"] and buggy["distinct_orders"] == 1, buggy
    assert fixed["distinct_orders"] == 3, fixed
    assert fixed["samples_per_epoch"] == buggy["samples_per_epoch"] == 32, "each of 2 processes draws half the data"


def test_fix_inserts_set_epoch_first_in_the_epoch_loop():
    fixed = fix_snippet("""\
        import torch
        from torch.utils.data import DataLoader, DistributedSampler
        sampler = DistributedSampler(dataset)
        loader = DataLoader(dataset, batch_size=8, sampler=sampler)
        for epoch in range(start_epoch, args.epochs):
            for x, y in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """)
    assert "for epoch in range(start_epoch, args.epochs):\n    sampler.set_epoch(epoch)\n    for x, y" in fixed


def test_reports_without_a_fix_when_the_loop_does_not_count_epochs():
    source = """\
        from torch.utils.data import DataLoader, DistributedSampler
        sampler = DistributedSampler(dataset)
        loader = DataLoader(dataset, batch_size=8, sampler=sampler)
        while step < max_steps:
            for x, y in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
                step += 1
        """
    assert codes(source) == [(2, "TL012")]
    assert fix_snippet(source) == textwrap.dedent(source)


REPORTED = {
    "sampler_of_a_trainer_class": """\
        import torch
        from torch.utils.data import DataLoader
        from torch.utils.data.distributed import DistributedSampler
        class Trainer:
            def __init__(self, model, dataset, rank, world_size):
                self.model = model
                self.optimizer = torch.optim.AdamW(model.parameters())
                self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank)  # here
                self.loader = DataLoader(dataset, batch_size=32, sampler=self.sampler, pin_memory=True)
            def train(self, epochs):
                for epoch in range(epochs):
                    self.run_epoch()
            def run_epoch(self):
                for batch in self.loader:
                    self.optimizer.zero_grad()
                    self.model(batch).mean().backward()
                    self.optimizer.step()
        """,
    "sampler_inline_in_the_loader": """\
        import torch.utils.data as data
        loader = data.DataLoader(ds, batch_size=8, sampler=data.DistributedSampler(ds, seed=1))  # here
        for epoch in range(10):
            for step, batch in enumerate(tqdm(loader)):
                loss = model(batch)
                loss.backward()
                opt.step()
                opt.zero_grad()
        """,
    "set_epoch_of_another_sampler": """\
        from torch.utils.data import DataLoader, DistributedSampler
        train_sampler = DistributedSampler(train_set)  # here
        val_sampler = DistributedSampler(val_set, shuffle=False)
        train_loader = DataLoader(train_set, batch_size=8, sampler=train_sampler)
        val_loader = DataLoader(val_set, batch_size=8, sampler=val_sampler)
        for epoch in range(10):
            val_sampler.set_epoch(epoch)
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        """,
}


@pytest.mark.parametrize("source", REPORTED.values(), ids=REPORTED.keys())
def test_reports_shuffling_sampler_without_set_epoch(source):
    row = next(i for i, line in enumerate(textwrap.dedent(source).splitlines(), 1) if line.endswith("# here"))
    assert codes(source) == [(row, "TL012")]


_SETUP = """\
from torch.utils.data import DataLoader, DistributedSampler
sampler = DistributedSampler(dataset)
loader = DataLoader(dataset, batch_size=8, sampler=sampler)
"""
_BATCHES = """\
    for x, y in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
"""

QUIET = {
    "set_epoch_called": _SETUP + "for epoch in range(10):\n    sampler.set_epoch(epoch)\n" + _BATCHES,
    "set_epoch_through_the_loader": _SETUP + "for epoch in range(10):\n    loader.sampler.set_epoch(epoch)\n" + _BATCHES,
    "set_epoch_in_the_training_helper": """\
        from torch.utils.data import DataLoader, DistributedSampler
        def train_one_epoch(model, loader, optimizer, epoch):
            loader.sampler.set_epoch(epoch)
            for x, y in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        loader = DataLoader(dataset, batch_size=8, sampler=DistributedSampler(dataset))
        for epoch in range(10):
            train_one_epoch(model, loader, optimizer, epoch)
        """,
    "set_epoch_on_something_unknown": _SETUP + "for epoch in range(10):\n    loaders['train'].sampler.set_epoch(epoch)\n"
                                      + _BATCHES,
    "validation_sampler_without_shuffle": """\
        from torch.utils.data import DataLoader, DistributedSampler
        loader = DataLoader(dataset, batch_size=8, sampler=DistributedSampler(dataset, shuffle=False))
        for epoch in range(10):
        """ + _BATCHES,
    "evaluation_loop_only": """\
        import torch
        from torch.utils.data import DataLoader, DistributedSampler
        loader = DataLoader(dataset, batch_size=8, sampler=DistributedSampler(dataset))
        for epoch in range(10):
            with torch.no_grad():
                for x, y in loader:
                    total += model(x).sum().item()
        """,
    "one_pass_over_the_data": _SETUP + "if True:\n" + _BATCHES,
    "one_epoch_loop": _SETUP + "for epoch in range(1):\n" + _BATCHES,
    "sampler_handed_to_an_unknown_trainer": _SETUP + "hooks = EpochHooks(sampler)\nfor epoch in range(10):\n"
                                            + _BATCHES,
    "sampler_of_unknown_kind": """\
        from torch.utils.data import DataLoader
        from mylib import build_sampler
        loader = DataLoader(dataset, batch_size=8, sampler=build_sampler(dataset))
        for epoch in range(10):
        """ + _BATCHES,
    "sampler_built_anew_every_epoch": """\
        from torch.utils.data import DataLoader, DistributedSampler
        for epoch in range(10):
            sampler = DistributedSampler(dataset, seed=epoch)
            loader = DataLoader(dataset, batch_size=8, sampler=sampler)
        """ + _BATCHES,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_or_unknown_code(source):
    assert codes(source) == []
