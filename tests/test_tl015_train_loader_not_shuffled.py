"""TL015 train-loader-not-shuffled: detection, silence on correct code, and runtime-verified fixes."""
from __future__ import annotations

import textwrap
from functools import partial

import pytest
from runtime import FIXTURES, autofixed, fix_is_none, fixtures, fix_snippet, reported, rows, run_both

import trainlint

codes = partial(rows, code="TL015")
BUGS = fixtures("TL015")


@pytest.mark.parametrize("path", [p for p in BUGS if not fix_is_none(p)], ids=lambda p: p.stem)
def test_runtime_every_epoch_draws_the_same_batches_and_the_fix_reshuffles(path, tmp_path):
    buggy, fixed = run_both(path, autofixed(path, tmp_path, unsafe=True))
    assert buggy["identical_orders"] and buggy["distinct_orders"] == 1, buggy
    assert buggy.get("single_class_batches", 1.0) == 1.0, "the sorted data should give one class per batch"
    assert not fixed["identical_orders"] and fixed["distinct_orders"] == fixed["epochs"] == buggy["epochs"], fixed
    assert fixed.get("single_class_batches", 0.0) < 0.5


def test_runtime_tf_data_without_shuffle_repeats_its_order_and_the_shuffled_pipeline_does_not():
    buggy, correct = run_both(FIXTURES / "TL015" / "bug_keras_tf_data_no_shuffle.py",
                              FIXTURES / "TL015" / "ok_keras_tf_data_shuffle.py")
    assert buggy["identical_orders"] and buggy["single_class_batches"] == 1.0, buggy
    assert correct["distinct_orders"] == correct["epochs"] == 3 and correct["single_class_batches"] < 0.5, correct


@pytest.mark.parametrize("path", fixtures("TL015", "ok_"), ids=lambda p: p.stem)
def test_correct_fixtures_have_no_finding(path):
    assert reported(path, "TL015") == set()


def test_fix_adds_shuffle_true_after_the_last_argument_and_is_unsafe():
    source = """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        ds = TensorDataset(torch.load("x.pt"))
        loader = DataLoader(
            ds,
            batch_size=4,
        )
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(5):
            for (x,) in loader:
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()
        """
    assert fix_snippet(source) == textwrap.dedent(source), "the fix changes training results: unsafe only"
    assert "    batch_size=4, shuffle=True,\n)" in fix_snippet(source, unsafe=True)


def test_fix_turns_shuffle_false_into_true():
    fixed = fix_snippet("""\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(torch.load("x.pt")), 4, False)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        while True:
            for (x,) in loader:
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()
        """, unsafe=True)
    assert 'DataLoader(TensorDataset(torch.load("x.pt")), 4, True)' in fixed


def test_message_names_the_training_loop():
    [finding] = trainlint.lint_source(textwrap.dedent("""\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(*torch.load("train.pt")), batch_size=4, shuffle=False)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(2):
            for (x,) in loader:
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()
        """))
    assert finding.code == "TL015" and "line 7" in finding.message and "`shuffle=False`" in finding.message


_LOOP = """
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for batch in loader:
        opt.zero_grad()
        model(batch[0]).sum().backward()
        opt.step()
"""
_TORCH = ("import torch\nfrom torch.utils.data import DataLoader, RandomSampler, TensorDataset, "
          "WeightedRandomSampler\nds = TensorDataset(torch.load('x.pt'))\n")

REPORTED = {
    "torchvision_dataset": """\
        import torch
        from torchvision import datasets, transforms
        train_set = datasets.MNIST("data", train=True, download=True, transform=transforms.ToTensor())
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=64)  # here
        model = torch.nn.Linear(784, 10)
        optimizer = torch.optim.Adam(model.parameters())
        for epoch in range(5):
            for images, labels in train_loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(images.flatten(1)), labels)
                loss.backward()
                optimizer.step()
        """,
    "local_dataset_class_trained_in_a_method": """\
        import torch
        from torch.utils.data import DataLoader, Dataset
        class Pairs(Dataset):
            def __init__(self, rows):
                self.rows = rows
            def __len__(self):
                return len(self.rows)
            def __getitem__(self, i):
                return self.rows[i]
        class Trainer:
            def __init__(self, rows, model):
                self.model = model
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                self.loader = DataLoader(Pairs(rows), batch_size=32, shuffle=False)  # here
            def fit(self, epochs):
                for epoch in range(epochs):
                    for x, y in self.loader:
                        self.optimizer.zero_grad()
                        torch.nn.functional.mse_loss(self.model(x), y).backward()
                        self.optimizer.step()
        """,
    "hf_dataset_mapped": """\
        import torch
        from datasets import load_dataset
        from torch.utils.data import DataLoader
        raw = load_dataset("imdb")
        train = raw["train"].map(tokenize, batched=True).with_format("torch")
        loader = DataLoader(train, batch_size=16, collate_fn=collate)  # here
        for epoch in range(3):
            for batch in tqdm(loader, desc="train"):
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        """,
    "loader_prepared_by_accelerate_keeps_its_order": """\
        import torch
        from accelerate import Accelerator
        from torch.utils.data import DataLoader, TensorDataset
        accelerator = Accelerator()
        loader = DataLoader(TensorDataset(*torch.load("train.pt")), batch_size=8)  # here
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.AdamW(model.parameters())
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        for epoch in range(3):
            for step, (x, y) in enumerate(loader):
                loss = torch.nn.functional.mse_loss(model(x), y)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
        """,
    "lightning_train_dataloader_without_shuffle": """\
        import pytorch_lightning as pl
        from torch.utils.data import DataLoader, random_split
        from torchvision.datasets import CIFAR10
        class Data(pl.LightningDataModule):
            def setup(self, stage=None):
                full = CIFAR10("data", train=True)
                self.train_set, self.val_set = random_split(full, [45000, 5000])
            def train_dataloader(self):
                return DataLoader(self.train_set, batch_size=128, num_workers=4)  # here
            def val_dataloader(self):
                return DataLoader(self.val_set, batch_size=128)
        """,
    "the_quiet_cases_dataset_without_shuffle": _TORCH + "loader = DataLoader(ds, batch_size=8)  # here" + _LOOP,
    "train_loader_rebound_in_a_branch_may_be_either": """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        train_loader = DataLoader(TensorDataset(*torch.load("train.pt")), batch_size=8, shuffle=True)
        if args.debug:
            train_loader = DataLoader(TensorDataset(*torch.load("small.pt")), batch_size=8)  # here
        for epoch in range(3):
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        """,
    "keras_fit_epochs_given_by_position": """\
        from tensorflow import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x_train, y_train, 32, 10, shuffle=False)  # here
        """,
    "keras_fit_arrays_with_shuffle_false": """\
        from tensorflow import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x_train, y_train, epochs=10, shuffle=False)  # here
        """,
    "tf_data_pipeline_without_shuffle_handed_to_fit": """\
        import tensorflow as tf
        model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        model.compile("adam", "mse")
        train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        train_ds = train_ds.batch(32).prefetch(tf.data.AUTOTUNE)
        model.fit(train_ds, validation_data=val_ds, epochs=10)  # here
        """,
}


@pytest.mark.parametrize("source", REPORTED.values(), ids=REPORTED.keys())
def test_reports_unshuffled_training_data(source):
    row = next(i for i, line in enumerate(textwrap.dedent(source).splitlines(), 1) if line.endswith("# here"))
    assert codes(source) == [(row, "TL015")]


QUIET = {
    "shuffle_true": _TORCH + "loader = DataLoader(ds, batch_size=8, shuffle=True)" + _LOOP,
    "random_sampler": _TORCH + "loader = DataLoader(ds, batch_size=8, sampler=RandomSampler(ds))" + _LOOP,
    "weighted_sampler_by_name": _TORCH + "sampler = WeightedRandomSampler(w, 64)\n"
                                         "loader = DataLoader(ds, batch_size=8, sampler=sampler)" + _LOOP,
    "batch_sampler": _TORCH + "loader = DataLoader(ds, batch_sampler=BucketSampler(ds, 8))" + _LOOP,
    "shuffle_from_a_variable": _TORCH + "loader = DataLoader(ds, batch_size=8, shuffle=args.shuffle)" + _LOOP,
    "keyword_arguments_unpacked": _TORCH + "loader = DataLoader(ds, **loader_kwargs)" + _LOOP,
    "dataset_of_unknown_kind": "import torch\nfrom torch.utils.data import DataLoader\nfrom mydata import build\n"
                               "ds = build(cfg)\nloader = DataLoader(ds, batch_size=8)" + _LOOP,
    "loader_from_a_library_factory": "import torch\nfrom mylib import make_loader\n"
                                     "loader = make_loader(ds, batch_size=8)" + _LOOP,
    "order_kept_on_purpose_with_a_comment": _TORCH + "loader = DataLoader(ds, batch_size=8, shuffle=False)"
                                                     "  # keep the time order" + _LOOP,
    "no_training_loop": _TORCH + "loader = DataLoader(ds, batch_size=8)\n"
                                 "with torch.no_grad():\n    preds = [model(b[0]) for b in loader]\n",
    "iterable_dataset_class": """\
        import torch
        from torch.utils.data import DataLoader, IterableDataset
        class Stream(IterableDataset):
            def __iter__(self):
                yield from read_shards()
        loader = DataLoader(Stream(), batch_size=8)
        for epoch in range(3):
            for batch in loader:
                loss = model(batch).sum()
                loss.backward()
                optimizer.step()
        """,
    "hf_streaming_dataset": """\
        import torch
        from datasets import load_dataset
        from torch.utils.data import DataLoader
        stream = load_dataset("c4", "en", split="train", streaming=True)
        loader = DataLoader(stream, batch_size=8)
        for epoch in range(3):
            for batch in loader:
                model(**batch).loss.backward()
                optimizer.step()
        """,
    "full_batch_gradient_descent": _TORCH + "loader = DataLoader(ds, batch_size=len(ds))" + _LOOP,
    "dataset_class_without_len": """\
        from torch.utils.data import DataLoader, Dataset
        class Lookup(Dataset):
            def __getitem__(self, i):
                return table[i]
        loader = DataLoader(Lookup(), batch_size=8)
        for epoch in range(3):
            for batch in loader:
                model(batch).sum().backward()
                optimizer.step()
        """,
    "validation_loader_in_an_evaluation_loop": """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        train_loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=8, shuffle=True)
        val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=8)
        for epoch in range(3):
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
            with torch.no_grad():
                for x, y in val_loader:
                    total += loss_fn(model(x), y).item()
        """,
    "test_loader_with_backward_for_test_time_adaptation": """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        test_loader = DataLoader(TensorDataset(x_test), batch_size=8)
        for epoch in range(3):
            for (x,) in test_loader:
                entropy(model(x)).backward()
                optimizer.step()
        """,
    "recurrent_state_carried_between_batches": """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        loader = DataLoader(TensorDataset(inputs, targets), batch_size=35)
        hidden = model.init_hidden(20)
        for epoch in range(3):
            for x, y in loader:
                hidden = hidden.detach()
                output, hidden = model(x, hidden)
                criterion(output, y).backward()
                optimizer.step()
        """,
    "lightning_val_dataloader": """\
        import pytorch_lightning as pl
        from torch.utils.data import DataLoader
        from torchvision.datasets import MNIST
        class Data(pl.LightningDataModule):
            def train_dataloader(self):
                return DataLoader(MNIST("data", train=True), batch_size=64, shuffle=True)
            def val_dataloader(self):
                return DataLoader(MNIST("data", train=False), batch_size=64)
        """,
    "keras_fit_default_shuffle": """\
        import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.fit(x_train, y_train, epochs=10, batch_size=32)
        """,
    "keras_stateful_rnn_needs_the_order": """\
        import keras
        model = keras.Sequential([keras.layers.LSTM(8, stateful=True), keras.layers.Dense(1)])
        model.fit(x_train, y_train, epochs=10, batch_size=1, shuffle=False)
        """,
    "keras_fit_on_a_dataset_with_shuffle_false_ignored": """\
        import tensorflow as tf
        model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(32)
        model.fit(ds, epochs=10, shuffle=False)
        """,
    "single_pass_over_the_data": _TORCH + "loader = DataLoader(ds, batch_size=8)\n"
                                          "for (x,) in loader:\n    opt.zero_grad()\n"
                                          "    model(x).sum().backward()\n    opt.step()\n",
    "epoch_loop_of_one": _TORCH + "loader = DataLoader(ds, batch_size=8)" + _LOOP.replace("range(3)", "range(1)"),
    "random_tensors": _TORCH.replace("torch.load('x.pt')", "torch.randn(64, 4), torch.randn(64, 1)")
                      + "loader = DataLoader(ds, batch_size=8)" + _LOOP,
    "numpy_random_converted_to_tensors": _TORCH + "import numpy as np\n"
                                                  "x = torch.from_numpy(np.random.rand(64, 4)).float().to(device)\n"
                                                  "loader = DataLoader(TensorDataset(x), batch_size=8)" + _LOOP,
    "random_dataset_class_by_name": _TORCH + "loader = DataLoader(RandomDataset(32, 64), batch_size=8)" + _LOOP,
    "notebook_rebinds_the_train_loader_after_training": """\
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        train_loader = DataLoader(TensorDataset(*torch.load("train.pt")), batch_size=8, shuffle=True)
        for epoch in range(3):
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        train_loader = DataLoader(TensorDataset(*torch.load("train.pt")), batch_size=8)
        features = [model(x) for x, _ in train_loader]
        """,
    "keras_fit_of_one_epoch_by_default": """\
        from tensorflow import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x_train, y_train, shuffle=False)
        """,
    "keras_fit_on_random_arrays": """\
        import numpy as np
        from tensorflow import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(np.random.rand(100, 4), np.random.rand(100, 1), epochs=10, shuffle=False)
        """,
    "tf_data_from_an_unknown_source": """\
        import tensorflow as tf
        model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        ds = tf.keras.utils.image_dataset_from_directory("train").batch(32)
        model.fit(ds, epochs=10)
        """,
}


@pytest.mark.parametrize("source", QUIET.values(), ids=QUIET.keys())
def test_quiet_on_correct_or_unknown_code(source):
    assert codes(source) == []


_ONE_EPOCH_HELPER = """\
    import torch
    num_epochs = 1
    def train(model, train_loader, num_epochs, optimizer, loss_fn):
        for epoch in range(num_epochs):
            for inputs, targets in train_loader:
                loss = loss_fn(model(inputs), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    train(model, train_loader, num_epochs, optimizer, loss_fn)
    """


def test_quiet_when_the_epoch_count_a_helper_receives_is_one():
    """keras-core examples/demo_custom_torch_workflow.py: `num_epochs = 1` at module level, handed to
    `train(model, train_loader, num_epochs, ...)` whose `for epoch in range(num_epochs)` wraps the batch loop:
    one pass over the data, no epoch repeats another's order."""
    assert codes(_ONE_EPOCH_HELPER) == []


def test_reports_when_the_epoch_count_a_helper_receives_is_above_one_or_unknown():
    assert codes(_ONE_EPOCH_HELPER.replace("num_epochs = 1", "num_epochs = 3")) == [(11, "TL015")]
    assert codes(_ONE_EPOCH_HELPER.replace("num_epochs = 1", "num_epochs = int(sys.argv[1])")) == [(11, "TL015")]


_KERAS_EPOCHS_CONSTANT = """\
    import tensorflow as tf
    from tensorflow import keras
    EPOCHS = 1
    train_ds = tf.data.Dataset.from_tensor_slices((features, labels)).batch(64)
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(train_ds, epochs=EPOCHS)
    """


def test_quiet_when_fit_runs_one_epoch_from_a_constant():
    """keras-core examples/keras_io/tensorflow/audio/uk_ireland_accent_recognition.py and vision/captcha_ocr.py:
    `EPOCHS = 1` (`epochs = 1`) handed to `model.fit(train_ds, epochs=EPOCHS)`: one pass over the pipeline."""
    assert codes(_KERAS_EPOCHS_CONSTANT) == []
    assert codes(_KERAS_EPOCHS_CONSTANT.replace("EPOCHS = 1", "EPOCHS = 20")) == [(7, "TL015")]
