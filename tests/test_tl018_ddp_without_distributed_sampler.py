"""TL018 ddp-without-distributed-sampler: detection, silence on correct code, and the runtime symptom (no fix)."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import FIXTURES, fixtures, fix_snippet, reported, rows, run_script

codes = partial(rows, code="TL018")


@pytest.mark.parametrize("path", fixtures("TL018"), ids=lambda p: p.stem)
def test_runtime_processes_without_a_distributed_sampler_train_on_the_same_batches(path):
    symptom = run_script(path)
    assert symptom["same_batches"] == 1.0 and symptom["overlap"] == 1.0, symptom
    assert symptom["samples_per_rank_epoch"] == symptom["dataset_size"], "each process goes through all the data"


def test_runtime_processes_with_a_distributed_sampler_train_on_their_own_halves():
    correct = run_script(FIXTURES / "TL018" / "ok_torch_ddp_distributed_sampler.py")
    assert correct["same_batches"] == 0.0 and correct["overlap"] == 0.0, correct
    assert correct["samples_per_rank_epoch"] * 2 == correct["dataset_size"]


@pytest.mark.parametrize("path", fixtures("TL018", "ok_"), ids=lambda p: p.stem)
def test_correct_fixtures_have_no_finding(path):
    assert reported(path, "TL018") == set()


def test_offers_no_fix():
    source = """\
        import torch
        from torch.nn.parallel import DistributedDataParallel
        from torch.utils.data import DataLoader
        loader = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)
        model = DistributedDataParallel(net, device_ids=[local_rank])
        for x, y in loader:
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
        """
    assert codes(source) == [(4, "TL018")]
    assert fix_snippet(source, unsafe=True) == textwrap.dedent(source)


REPORTED = {
    "helper_trains_the_wrapped_model": """\
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data import DataLoader
        from torchvision import datasets
        def train(model, loader, optimizer):
            for images, labels in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(images), labels).backward()
                optimizer.step()
        def main(rank, world_size):
            dist.init_process_group("nccl", rank=rank, world_size=world_size)
            train_set = datasets.CIFAR10("data", train=True, download=True)
            loader = DataLoader(train_set, batch_size=128, shuffle=True, num_workers=4)  # here
            model = DDP(Net().to(rank), device_ids=[rank])
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(90):
                train(model, loader, optimizer)
        """,
    "random_sampler_of_one_process": """\
        import torch
        from torch.utils.data import DataLoader, RandomSampler, TensorDataset
        model = torch.nn.parallel.DistributedDataParallel(net)
        ds = TensorDataset(x, y)
        loader = DataLoader(ds, batch_size=8, sampler=RandomSampler(ds))  # here
        for epoch in range(3):
            for x, y in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                optimizer.step()
        """,
    "fsdp_wrapped_model": """\
        import torch
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.utils.data import DataLoader
        from datasets import load_dataset
        data = load_dataset("wikitext", "wikitext-2-raw-v1", split="train").map(tokenize)
        loader = DataLoader(data, batch_size=4, collate_fn=collate)  # here
        model = FSDP(model)
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        """,
}


@pytest.mark.parametrize("source", REPORTED.values(), ids=REPORTED.keys())
def test_reports_ddp_model_fed_by_a_loader_without_distributed_sampler(source):
    row = next(i for i, line in enumerate(textwrap.dedent(source).splitlines(), 1) if line.endswith("# here"))
    assert codes(source) == [(row, "TL018")]


_LOOP = """
model = DDP(net)
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
"""
_HEAD = ("import torch\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n"
         "from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset, TensorDataset\n"
         "ds = TensorDataset(x, y)\n")


def test_reports_the_quiet_cases_loader_without_their_reason():
    """The control for the cases below: they are quiet for their own reason, not for the imports."""
    assert codes(_HEAD + "loader = DataLoader(ds, batch_size=8, shuffle=True)" + _LOOP) == [(5, "TL018")]


QUIET = {
    "distributed_sampler": _HEAD + "loader = DataLoader(ds, batch_size=8, sampler=DistributedSampler(ds))" + _LOOP,
    "distributed_sampler_when_distributed": _HEAD + "sampler = DistributedSampler(ds) if args.distributed else None\n"
                                            "loader = DataLoader(ds, batch_size=8, shuffle=sampler is None, "
                                            "sampler=sampler)" + _LOOP,
    "distributed_or_random_sampler": _HEAD + "if local_rank == -1:\n    sampler = RandomSampler(ds)\nelse:\n"
                                     "    sampler = DistributedSampler(ds)\n"
                                     "loader = DataLoader(ds, batch_size=8, sampler=sampler)" + _LOOP,
    "sampler_of_unknown_kind": _HEAD + "loader = DataLoader(ds, batch_size=8, sampler=make_sampler(ds))" + _LOOP,
    "batch_sampler": _HEAD + "loader = DataLoader(ds, batch_sampler=GroupedBatchSampler(ds, 8))" + _LOOP,
    "loader_prepared_by_accelerate": _HEAD + "loader = DataLoader(ds, batch_size=8, shuffle=True)\n"
                                     "loader = accelerator.prepare(loader)" + _LOOP,
    "loader_prepared_by_ray_train": _HEAD + "import ray.train.torch\n"
                                    "loader = DataLoader(ds, batch_size=8, shuffle=True)\n"
                                    "loader = ray.train.torch.prepare_data_loader(loader)" + _LOOP,
    "dataset_indexed_by_a_rank_split_of_indices": _HEAD + "idx = torch.randperm(len(x))\n"
                                                  "idx = idx.chunk(world_size)[rank]\n"
                                                  "train_x, train_y = x[idx], y[idx]\n"
                                                  "loader = DataLoader(TensorDataset(train_x, train_y), "
                                                  "batch_size=8, shuffle=True)" + _LOOP,
    "dataset_split_by_rank_by_hand": _HEAD + "mine = Subset(ds, range(rank, len(ds), world_size))\n"
                                     "loader = DataLoader(mine, batch_size=8, shuffle=True)" + _LOOP,
    "hf_dataset_sharded_by_rank": """\
        from datasets import load_dataset
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data import DataLoader
        data = load_dataset("imdb", split="train").shard(num_shards=world_size, index=rank)
        loader = DataLoader(data, batch_size=8, shuffle=True)
        model = DDP(net)
        for batch in loader:
            model(**batch).loss.backward()
            optimizer.step()
        """,
    "iterable_dataset_that_shards_itself": """\
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data import DataLoader, IterableDataset
        class Shards(IterableDataset):
            def __iter__(self):
                yield from read(files[dist.get_rank()::dist.get_world_size()])
        loader = DataLoader(Shards(), batch_size=8)
        model = DDP(net)
        for batch in loader:
            model(batch).sum().backward()
            optimizer.step()
        """,
    "dataset_of_unknown_kind_without_shuffle": _HEAD + "loader = DataLoader(build_dataset(cfg), batch_size=8)" + _LOOP,
    "single_process_data_parallel": """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
        model = torch.nn.DataParallel(net)
        for x, y in loader:
            model(x).sum().backward()
            optimizer.step()
        """,
    "wrapped_model_not_trained_on_this_loader": _HEAD + "loader = DataLoader(ds, batch_size=8, shuffle=True)\n"
                                                "model = DDP(net)\nfor x, y in loader:\n    probe(x).sum().backward()\n"
                                                "    probe_optimizer.step()\n",
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_or_unknown_code(source):
    assert codes(source) == []
