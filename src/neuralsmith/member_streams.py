"""Each member's random stream read ahead in blocks: the same numbers, in far fewer calls.

The batched trainers of :mod:`neuralsmith.ensemble` give member s exactly the draws its single
run makes from its own ``torch.Generator``. Drawn call by call, that is one small call per member
per draw (10 seeds, CD-1: 20 calls a step), and the calls cost more than the numbers. On the CPU,
``random_`` and ``uniform_`` consume a generator element by element, so drawing n + m numbers at
once gives the n numbers of a first call followed by the m of a second (``tests/test_member_streams.py``
checks it). :class:`MemberStream` uses that: told how many numbers the members will draw before
anything else reads their generators (:meth:`MemberStream.reserve`: an epoch's worth, after its
``randperm``), it fills blocks of at most ``block`` numbers per member and hands them out in
order. It never draws past the reservation, so the generators end where the call-by-call draws
leave them. Off the CPU (CUDA's Philox generator counts in blocks), it draws each request
when asked, as before.

Example:
    >>> import torch
    >>> gens = [torch.Generator().manual_seed(s) for s in range(3)]
    >>> stream = MemberStream(gens, "uniform")
    >>> stream.reserve(10)
    >>> a, b = stream.take(4), stream.take(6)  # (3, 4), (3, 6)
    >>> torch.equal(b[1], torch.rand(10, generator=torch.Generator().manual_seed(1))[4:])
    True
"""

from __future__ import annotations

from typing import Sequence

import torch

KINDS = ("words", "uniform")  # int64 words of random_(), or uniform_() numbers in the default dtype


class MemberStream:
    """Read-ahead draws of S generators, all of one kind.

    Args:
        generators: one per member, all on one device.
        kind: ``words`` (int64, as ``torch.empty(n, dtype=int64).random_(generator=g)``) or
            ``uniform`` (U[0, 1) as ``torch.rand(n, generator=g)``, in the default dtype).
        block: the most numbers drawn per member in one call (bounds the memory: S x block).
    """

    def __init__(self, generators: Sequence[torch.Generator], kind: str, block: int = 1 << 18):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        self.generators, self.kind, self.block_size = list(generators), kind, block
        self.device = self.generators[0].device
        self.dtype = torch.int64 if kind == "words" else torch.get_default_dtype()
        self.read_ahead = self.device.type == "cpu"
        self.block, self.pos, self.left = self._draw(0), 0, 0

    def reserve(self, count: int) -> None:
        """Announce that each member draws ``count`` numbers next, before any other draw.

        Raises:
            RuntimeError: if the last reservation was not used up (the generators would part
                from the single runs').
        """
        if self.left or self.pos < self.block.shape[1]:
            raise RuntimeError("the previous reservation of this stream was not used up")
        self.left = count if self.read_ahead else 0

    def take(self, count: int) -> torch.Tensor:
        """The members' next ``count`` numbers, (S, count)."""
        if not self.read_ahead:
            return self._draw(count)
        parts = []
        while count:
            if self.pos == self.block.shape[1]:
                self._refill()
            k = min(count, self.block.shape[1] - self.pos)
            parts.append(self.block[:, self.pos:self.pos + k])
            self.pos, count = self.pos + k, count - k
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def _refill(self) -> None:
        if not self.left:
            raise RuntimeError("a draw beyond this stream's reservation; reserve() the epoch's draws first")
        size = min(self.block_size, self.left)
        self.block, self.pos, self.left = self._draw(size), 0, self.left - size

    def _draw(self, count: int) -> torch.Tensor:
        """``count`` fresh numbers from each generator, (S, count)."""
        out = torch.empty(len(self.generators), count, dtype=self.dtype, device=self.device)
        for row, g in zip(out, self.generators):
            if self.kind == "words":
                row.random_(generator=g)
            else:
                row.uniform_(generator=g)
        return out
