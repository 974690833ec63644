import numpy as np
import pytest

from neuralsmith.study.function_space import embed, separability


def test_separable_families_score_one_and_mixed_score_near_chance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (30, 5)), rng.normal(10, 1, (30, 5))
    labels = np.repeat([0, 1], 30)
    assert separability(np.vstack([a, b]), labels) == 1.0
    same = rng.normal(0, 1, (60, 5))
    assert separability(same, labels, k=3) < 0.75


@pytest.mark.parametrize("method", ["tsne", "isomap"])
def test_embed_gives_2d(method):
    pts = np.random.default_rng(0).normal(size=(40, 6))
    assert embed(pts, method).shape == (40, 2)


def test_bad_method():
    with pytest.raises(ValueError, match="tsne"):
        embed(np.zeros((5, 2)), "umap")
