"""How fast this machine is right now, in the bench's own kind of work (``rls3 perf speed``).

A bench's wall time depends on the machine as much as on the code: the 2-core development
machine's speed varies by up to a third within a day. ``speed_sample`` times two fixed
workloads shaped like the bench's two largest costs, in plain torch (no project code, so the
figure means the same at every commit):

- ``text_step_ms``: a fine-tuning step of the built-in CLIP's text tower's shape, a 2-layer,
  width-64, 4-head transformer over 160 texts of 20 tokens, forward, backward and AdamW;
- ``mlp_step_ms``: a gradient step of the bench's SAC networks' shape, three 64 x 64 MLPs on a
  batch of 64, forward, backward and Adam.

Each is the median of ``rounds`` timed blocks after a warm-up, on ``threads`` torch threads
(the bench's runs use one each). ``make bench`` records a sample at its start and at its end in
``bench.json``: two benches' wall times compare once scaled by these.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from benchmark.provenance import torch_threads

TEXTS, TOKENS, WIDTH, HEADS, LAYERS = 160, 20, 64, 4, 2
BATCH, OBSERVATION, HIDDEN = 64, 16, 64


def _text_step() -> Callable[[], None]:
    """One fine-tuning-shaped step of a small causal transformer (fixed weights and inputs)."""
    layer = torch.nn.TransformerEncoderLayer(
        WIDTH, HEADS, dim_feedforward=4 * WIDTH, batch_first=True, activation="gelu"
    )
    model = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randn(TEXTS, TOKENS, WIDTH)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(TOKENS)

    def step() -> None:
        loss = model(tokens, mask=mask, is_causal=True)[:, -1].square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _mlp_step() -> Callable[[], None]:
    """One SAC-shaped gradient step: three small MLPs (actor, two critics) on one batch."""

    def mlp() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(OBSERVATION, HIDDEN),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, HIDDEN),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, 1),
        )

    nets = [mlp() for _ in range(3)]
    optimizers = [torch.optim.Adam(n.parameters(), lr=1e-3) for n in nets]
    batch = torch.randn(BATCH, OBSERVATION)

    def step() -> None:
        for net, optimizer in zip(nets, optimizers, strict=True):
            loss = net(batch).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return step


def _median_ms(step: Callable[[], None], per_round: int, rounds: int) -> float:
    """The median over ``rounds`` of one step's mean time in a block of ``per_round`` (ms)."""
    step()  # warm-up: allocations and kernel choice
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            step()
        times.append((time.perf_counter() - start) / per_round * 1000)
    return statistics.median(times)


def speed_sample(threads: int = 1, rounds: int = 15) -> dict[str, float]:
    """The two workloads' step times on this machine now (ms, lower is faster), on ``threads``
    torch threads (restored afterwards); about 3 s on the 2-core development machine."""
    if threads < 1 or rounds < 1:
        raise ValueError(f"threads and rounds must be >= 1, got {threads} and {rounds}")
    with torch_threads(threads):
        torch.manual_seed(0)
        text = _median_ms(_text_step(), per_round=2, rounds=rounds)
        mlp = _median_ms(_mlp_step(), per_round=20, rounds=rounds)
    return {"text_step_ms": round(text, 2), "mlp_step_ms": round(mlp, 3), "threads": threads}
