"""The small TL001 script the CLI, output and file-handling tests lint, and its fixed form."""

BUGGY = """\
import torch
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in range(3):
    loss = model(torch.randn(2, 4)).sum()
    loss.backward()
    opt.step()
"""
# What `trainlint check --fix` makes of it.
FIXED = BUGGY.replace("for x in range(3):\n", "for x in range(3):\n    opt.zero_grad()\n")
