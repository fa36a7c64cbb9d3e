"""How long an editor waits for trainlint's diagnostics: didOpen -> publishDiagnostics, over stdio.

    python bench/lsp_latency.py [--runs N] [--lines L]

Starts `python -m trainlint server` from this checkout, opens a ~1,000-line training script (a realistic
script repeated, each copy with its own names and a few of the bugs trainlint reports) N times under
fresh URIs, and times each didOpen until the server publishes that document's diagnostics. Beside it,
interleaved with it, `lint_source` alone on the same text in this process: without the fixes' text
edits (what the server runs before it publishes) and with them (what the quick fixes wait for; the
server computes them once the document is idle). So the protocol's share (JSON, pipes, the worker
thread) is visible. Not a test: the machine's load moves these numbers.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import trainlint  # after the path, so that this checkout is measured

BLOCK = '''

class Net{i}(nn.Module):
    """Block {i}: a small classifier."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.dropout = nn.Dropout(0.25)
        self.head = nn.Linear(16 * 8 * 8, hidden)
        self.out = nn.Linear(hidden, 10)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        return self.out(F.relu(self.head(self.dropout(x))))


def evaluate{i}(model, loader):
    model.eval()
    correct, seen = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            seen += labels.numel()
    return correct / max(seen, 1)


def train{i}(args):
    data = TensorDataset(torch.randn(256, 3, 16, 16), torch.randint(0, 10, (256,)))
    train_loader = DataLoader(data, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(data, batch_size=64)
    model = Net{i}()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
    best = 0.0
    for epoch in range(args.epochs):
        running_loss = 0.0
        for step, (images, labels) in enumerate(train_loader):
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss
            if step % args.log_every == 0:
                print(f"epoch {{epoch}} step {{step}}: {{running_loss / (step + 1):.4f}}")
        scheduler.step()
        accuracy = evaluate{i}(model, val_loader)
        if accuracy > best:
            best = accuracy
            torch.save(model.state_dict(), f"net{i}.pt")
    return best
'''

HEADER = '''"""A long training script: many models, each with its own training loop."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--log-every", type=int, default=10)
    return parser.parse_args()
'''

FOOTER = '''

if __name__ == "__main__":
    train0(parse_args())
'''


def script(lines: int) -> str:
    text, i = HEADER, 0
    while text.count("\n") < lines:
        text += BLOCK.format(i=i)
        i += 1
    return text + FOOTER


class Client:
    """Just enough LSP over the server's pipes: framed JSON-RPC, a reader thread, a queue."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-m", "trainlint", "server"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            self.messages.put((time.perf_counter(), json.loads(stream.read(length))))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, method: str, params) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            _, message = self.messages.get(timeout=120)
            if message.get("id") == self.next_id and "method" not in message:
                return message

    def notify(self, method: str, params) -> None:
        self.send({"method": method, "params": params})

    def wait_for_diagnostics(self, uri: str) -> tuple[float, dict]:
        while True:
            at, message = self.messages.get(timeout=120)
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return at, message["params"]

    def close(self) -> None:
        self.request("shutdown", None)
        self.notify("exit", None)
        self.process.wait(timeout=60)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args()

    text = script(args.lines)
    folder = Path(tempfile.mkdtemp(prefix="trainlint-bench-"))
    findings = trainlint.lint_source(text, str(folder / "train.py"))
    print(f"script: {text.count(chr(10))} lines, {len(findings)} findings "
          f"({', '.join(sorted({f.code for f in findings}))}); {args.runs} runs after 2 warm-up runs")

    # The same collector settings as the server (trainlint/server/__init__.py), so that the difference
    # between the first two rows is the protocol's.
    gc.set_threshold(max(gc.get_threshold()[0], 20_000), *gc.get_threshold()[1:])
    client = Client()
    client.request("initialize", {"processId": os.getpid(), "rootUri": folder.as_uri(), "capabilities": {}})
    client.notify("initialized", {})
    gc.freeze()
    server: list[float] = []
    alone: list[float] = []
    with_edits: list[float] = []
    alone_cpu: list[float] = []  # CPU time: what the wall time would be on an idle machine
    for run in range(args.runs + 2):  # interleaved, so that a change in the machine's load hits all three
        uri = (folder / f"train_{run}.py").as_uri()
        start = time.perf_counter()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}})
        at, params = client.wait_for_diagnostics(uri)
        assert len(params["diagnostics"]) == len(findings), params["diagnostics"][:1]
        elapsed = (at - start) * 1000
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        client.wait_for_diagnostics(uri)  # the clearing
        start, cpu = time.perf_counter(), time.thread_time()
        trainlint.lint_source(text, str(folder / f"train_{run}.py"), fix_edits=False)
        middle, cpu = time.perf_counter(), time.thread_time() - cpu
        trainlint.lint_source(text, str(folder / f"train_{run}.py"), fix_edits=True)
        end = time.perf_counter()
        if run >= 2:
            server.append(elapsed)
            alone.append((middle - start) * 1000)
            with_edits.append((end - middle) * 1000)
            alone_cpu.append(cpu * 1000)
    client.close()

    width = 44
    print(f"{'':<{width}} {'median':>9} {'p90':>9}")
    for label, values in (("didOpen -> publishDiagnostics (server)", server),
                          ("lint_source alone (what the server runs)", alone),
                          ("  the same, CPU time of its thread", alone_cpu),
                          ("lint_source with fix edits (quick fixes)", with_edits)):
        print(f"{label:<{width}} {statistics.median(values):>7.0f}ms {percentile(values, 0.9):>7.0f}ms")
    share = statistics.median(alone) / statistics.median(server)
    print(f"lint_source is {share:.0%} of the median latency; the rest is the protocol "
          f"(JSON, pipes, the hand-off to the worker thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
