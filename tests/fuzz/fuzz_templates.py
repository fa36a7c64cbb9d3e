"""Training-loop templates with holes, for splicing generated code into places where the rules look.

Each template is a small buggy training script (so that the rules fire and fixes are applied) with
`# HOLE` lines: a generated program goes there, indented to the hole's level. The odd code then sits
at module level before the loop, inside the batch loop between the training events, or inside the
training step function, where it can shadow the optimizer, break the loop, return early, redefine the
model...
"""
from __future__ import annotations

import textwrap

# A torch loop: no zero_grad (TL001), clipping after the step (TL005), the loss kept with its graph
# (TL004), an Adam learning rate far too high (TL006, unsafe fix).
TORCH = '''\
import torch
import torch.nn.functional as F

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
batches = [(torch.randn(8, 4), torch.randn(8, 1)) for _ in range(4)]
# HOLE


def train_epoch(batches):
    model.train()
    running_loss = 0.0
    for x, y in batches:
        # HOLE
        loss = F.mse_loss(model(x), y)
        loss.backward()
        # HOLE
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        running_loss += loss
    return running_loss


for epoch in range(3):
    # HOLE
    train_epoch(batches)
'''

# A Keras GradientTape step: the model called without training=True around Dropout (TL007), the
# gradients clipped after apply_gradients (TL005).
KERAS = '''\
import keras
import tensorflow as tf

model = keras.Sequential([
    keras.Input(shape=(8,)),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(1),
])
optimizer = keras.optimizers.SGD(learning_rate=0.01)
loss_fn = keras.losses.MeanSquaredError()
# HOLE


@tf.function
def train_step(x, y):
    # HOLE
    with tf.GradientTape() as tape:
        predictions = model(x)
        loss = loss_fn(y, predictions)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    gradients, _ = tf.clip_by_global_norm(gradients, 1.0)
    # HOLE
    return loss


for epoch in range(2):
    for x, y in dataset:
        # HOLE
        train_step(x, y)
'''

# An sklearn scaler fit on the validation split (TL003), feeding a torch loop with its steps in the
# wrong order (TL002).
SKLEARN = '''\
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

X = np.random.rand(100, 5)
y = np.random.rand(100, 1)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2)
# HOLE
scaler = StandardScaler()
scaler.fit(X_val)
X_train = scaler.transform(X_train)
X_val = scaler.transform(X_val)

model = torch.nn.Linear(5, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(5):
    # HOLE
    optimizer.zero_grad()
    optimizer.step()
    loss = ((model(torch.tensor(X_train, dtype=torch.float32)) - torch.tensor(y_train)) ** 2).mean()
    loss.backward()
'''

TEMPLATES = {"torch": TORCH, "keras": KERAS, "sklearn": SKLEARN}


def holes(template: str) -> int:
    return template.count("# HOLE\n")


def splice(template: str, hole: int, code: str) -> str:
    """`template` with `code` at its `hole`-th hole (indented to the hole's level); the other holes are
    left as the comments they are."""
    lines = template.splitlines(keepends=True)
    seen = -1
    for i, line in enumerate(lines):
        if line.strip() == "# HOLE":
            seen += 1
            if seen == hole:
                indent = line[: len(line) - len(line.lstrip())]
                body = code if code.endswith("\n") or not code else code + "\n"
                lines[i] = textwrap.indent(body, indent, lambda _: True) if body.strip() else line
                break
    else:
        raise IndexError(f"the template has no hole {hole}")
    return "".join(lines)
