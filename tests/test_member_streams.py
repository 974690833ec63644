"""Read-ahead member streams hand out exactly the numbers call-by-call draws would, and never
draw past their reservation."""

import pytest
import torch

from neuralsmith.member_streams import MemberStream


@pytest.mark.parametrize("kind", ["words", "uniform"])
@pytest.mark.parametrize("block", [7, 1 << 18])
def test_takes_equal_call_by_call_draws_across_blocks_and_epochs(kind, block):
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    stream = MemberStream(gens, kind, block=block)
    counts = [5, 9, 1, 16, 3]
    got = []
    for _ in range(2):  # two epochs, a randperm between them as in the trainers
        stream.reserve(sum(counts))
        got += [stream.take(c) for c in counts]
        for g in gens:
            torch.randperm(10, generator=g)
    for s in range(3):
        g = torch.Generator().manual_seed(s)
        want = []
        for _ in range(2):
            want += [torch.empty(c, dtype=torch.int64).random_(generator=g) if kind == "words"
                     else torch.rand(c, generator=g) for c in counts]
            torch.randperm(10, generator=g)
        assert all(torch.equal(a[s], b) for a, b in zip(got, want))


def test_uniforms_follow_the_default_dtype():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        stream = MemberStream([torch.Generator().manual_seed(4)], "uniform", block=5)
        stream.reserve(12)
        got = torch.cat([stream.take(4), stream.take(8)], 1)[0]
        assert got.dtype == torch.float64
        assert torch.equal(got, torch.rand(12, generator=torch.Generator().manual_seed(4)))
    finally:
        torch.set_default_dtype(old)


def test_a_take_beyond_the_reservation_is_refused():
    stream = MemberStream([torch.Generator()], "words", block=4)
    stream.reserve(6)
    stream.take(5)
    with pytest.raises(RuntimeError, match="beyond this stream's reservation"):
        stream.take(2)


def test_a_reservation_not_used_up_is_refused():
    stream = MemberStream([torch.Generator()], "words")
    stream.reserve(6)
    stream.take(5)
    with pytest.raises(RuntimeError, match="not used up"):
        stream.reserve(3)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="words, uniform"):
        MemberStream([torch.Generator()], "normal")
