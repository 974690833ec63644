"""The labeled subset of a semi-supervised run: seeded, class-stratified, never a class short."""

import pytest
import torch

from neuralsmith.data import labeled_subset, split_labeled


@pytest.fixture
def labels():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 5, (1000,), generator=g)


def test_same_seed_same_subset_other_seed_other_subset(labels):
    a, b = labeled_subset(labels, 0.1, seed=3), labeled_subset(labels, 0.1, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, labeled_subset(labels, 0.1, seed=4))


def test_each_class_keeps_its_share(labels):
    idx = labeled_subset(labels, 0.1, seed=0)
    counts = torch.bincount(labels, minlength=5)
    assert torch.equal(torch.bincount(labels[idx], minlength=5), torch.round(counts * 0.1).long())


def test_indices_are_unique_sorted_and_in_range(labels):
    idx = labeled_subset(labels, 0.37, seed=1)
    assert torch.equal(idx, torch.unique(idx)) and 0 <= idx.min() and idx.max() < len(labels)


def test_a_rare_class_keeps_at_least_one_label():
    y = torch.tensor([0] * 500 + [1] * 3)
    idx = labeled_subset(y, 0.01, seed=0)
    assert torch.bincount(y[idx]).tolist() == [5, 1]


def test_the_subset_is_uniform_within_a_class(labels):
    hits = torch.zeros(len(labels))
    for seed in range(200):
        hits[labeled_subset(labels, 0.2, seed=seed)] += 1
    assert hits.min() > 15 and hits.max() < 70  # each row kept about 40 times in 200


def test_fraction_one_keeps_every_row(labels):
    assert torch.equal(labeled_subset(labels, 1.0), torch.arange(len(labels)))


def test_split_labeled_partitions_the_rows(labels):
    x = torch.arange(len(labels)).float().unsqueeze(1)
    xl, yl, xu = split_labeled(x, labels, 0.25, seed=0)
    assert len(xl) + len(xu) == len(x)
    assert torch.equal(torch.sort(torch.cat([xl, xu])[:, 0]).values, x[:, 0])
    assert torch.equal(labels[xl[:, 0].long()], yl)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_outside_0_1_is_refused(labels, fraction):
    with pytest.raises(ValueError, match=r"labeled fraction must be in \(0, 1\]"):
        labeled_subset(labels, fraction)


def test_float_labels_are_refused():
    with pytest.raises(ValueError, match="1-D integer labels"):
        labeled_subset(torch.rand(10), 0.5)
