"""Padding collator and length-grouped batching."""

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workers.chat_data import EncodedChat


@dataclass
class Batch:
    """Right-padded tensors, all [batch, seq]:

    input_ids  [[5, 9, 2, 0]]       pad id where padded
    attention  [[1, 1, 1, 0]]
    supervised [[F, T, T, F]]       loss only where True
    positions  [[0, 1, 2, 0]]       1-based position inside the assistant turn
    reference  [[0, -.3, -.1, 0]]   aligned model's log-prob of each token (0 where not supervised)
    recovery   [F]                  per row: a safety recovery example (augmentation), not tenant data
    """

    input_ids: torch.Tensor
    attention: torch.Tensor
    supervised: torch.Tensor
    positions: torch.Tensor
    reference: torch.Tensor
    recovery: torch.Tensor

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(
            *(
                t.to(device)
                for t in (
                    self.input_ids,
                    self.attention,
                    self.supervised,
                    self.positions,
                    self.reference,
                    self.recovery,
                )
            )
        )

    @property
    def n_tokens(self) -> int:
        return int(self.attention.sum())


def collate(examples: Sequence[EncodedChat], references: Sequence[Sequence[float]] | None, pad_id: int) -> Batch:
    width = max(len(e.input_ids) for e in examples)
    n = len(examples)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    supervised = torch.zeros((n, width), dtype=torch.bool)
    positions = torch.zeros((n, width), dtype=torch.long)
    reference = torch.zeros((n, width), dtype=torch.float32)
    recovery = torch.tensor([bool(e.meta.get("recovery")) for e in examples], dtype=torch.bool)
    for row, example in enumerate(examples):
        length = len(example.input_ids)
        input_ids[row, :length] = torch.tensor(example.input_ids)
        attention[row, :length] = 1
        supervised[row, :length] = torch.tensor(example.supervised)
        positions[row, :length] = torch.tensor(example.positions)
        if references is not None:
            reference[row, :length] = torch.tensor(references[row], dtype=torch.float32)
    return Batch(input_ids, attention, supervised, positions, reference, recovery)


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort within windows of 50 batches by length so padding stays small; batches shuffled."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    grouped: list[int] = []
    for start in range(0, len(order), window):
        grouped += sorted(order[start : start + window], key=lambda i: lengths[i])
    batches = [grouped[i : i + batch_size] for i in range(0, len(grouped), batch_size)]
    rng.shuffle(batches)
    return batches


def micro_batches(recovery: Sequence[bool], micro: int | None) -> list[range]:
    """One step's rows as micro-batches of at most `micro` rows (None: unbounded), tenant rows and recovery
    examples apart. The rows arrive tenant first, then recovery; recovery examples (harmful prompt, answer prefix,
    refusal) are often several times longer than a tenant's rows, and one padded batch of both would pay for the
    longest on every row. Losses are per-row sums over a whole-step divisor, so the split leaves the gradient as is."""
    groups: list[range] = []
    start = 0
    for end in range(1, len(recovery) + 1):
        if end == len(recovery) or recovery[end] != recovery[start]:
            size = micro or end - start
            groups += [range(b, min(b + size, end)) for b in range(start, end, size)]
            start = end
    return groups
