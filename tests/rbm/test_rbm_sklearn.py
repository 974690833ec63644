"""The scikit-learn face: the estimator checks, and parity with BernoulliRBM's behaviour."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuralsmith.sklearn import RBMTransformer

# Bernoulli visible units reject X outside [0, 1] (a documented contract BernoulliRBM does not
# check); these checks feed unbounded data. The Gaussian-visible instance runs each of them.
_UNBOUNDED = ("feeds data outside [0, 1], which Bernoulli visible units reject; "
              "the visible='gaussian' instance passes this check")
BERNOULLI_XFAIL = {name: _UNBOUNDED for name in [
    "check_estimators_dtypes", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_pipeline_consistency",
    "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_dont_overwrite_parameters", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
]}
BERNOULLI = RBMTransformer(n_components=4, n_iter=2, random_state=0)
GAUSSIAN = RBMTransformer(n_components=4, n_iter=2, visible="gaussian", learning_rate=0.01,
                          random_state=0)


@parametrize_with_checks([BERNOULLI, GAUSSIAN], expected_failed_checks=lambda est: (
    BERNOULLI_XFAIL if est.visible == "bernoulli" else {}))
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def digits01():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target


def test_features_feed_a_classifier_in_a_pipeline(digits01):
    x, y = digits01
    pipe = make_pipeline(RBMTransformer(n_components=64, n_iter=10, learning_rate=0.06,
                                        batch_size=10, random_state=0),
                         LogisticRegression(C=10, max_iter=300))
    assert pipe.fit(x[:1200], y[:1200]).score(x[1200:], y[1200:]) > 0.8  # sklearn's: similar


def test_dtypes_are_preserved(digits01):
    x, _ = digits01
    for dtype in (np.float32, np.float64):
        est = RBMTransformer(n_components=5, n_iter=1, random_state=0).fit(x[:100].astype(dtype))
        assert est.transform(x[:3].astype(dtype)).dtype == dtype
        assert est.components_.shape == (5, 64) and est.components_.dtype == dtype


def test_score_samples_is_reproducible_with_random_state(digits01):
    x, _ = digits01
    est = RBMTransformer(n_components=8, n_iter=2, random_state=3).fit(x[:200])
    assert np.array_equal(est.score_samples(x[:20]), est.score_samples(x[:20]))
    assert est.score_samples(x[:20]).shape == (20,) and (est.score_samples(x[:20]) <= 0).all()


def test_same_random_state_same_model(digits01):
    x, _ = digits01
    a = RBMTransformer(n_components=6, n_iter=2, random_state=1).fit(x[:200])
    b = RBMTransformer(n_components=6, n_iter=2, random_state=1).fit(x[:200])
    assert np.array_equal(a.components_, b.components_)


def test_partial_fit_continues_training(digits01):
    x, _ = digits01
    est = RBMTransformer(n_components=8, random_state=0).partial_fit(x[:200])
    w1 = est.components_
    est.partial_fit(x[200:400])
    assert est.n_features_in_ == 64 and not np.array_equal(w1, est.components_)


def test_gibbs_step_returns_binary_rows(digits01):
    x, _ = digits01
    est = RBMTransformer(n_components=8, n_iter=1, random_state=0).fit(x[:100])
    v = est.gibbs(x[:5])
    assert v.shape == (5, 64) and set(np.unique(v)) <= {0.0, 1.0}


def test_bernoulli_face_rejects_data_outside_unit_interval():
    with pytest.raises(ValueError, match=r"X must lie in \[0, 1\].*MinMaxScaler"):
        RBMTransformer(n_components=2).fit(np.full((5, 3), 2.0))


def test_bad_method_reaches_the_user():
    with pytest.raises(ValueError, match="method must be one of cd, pcd, fpcd"):
        RBMTransformer(n_components=2, method="exact").fit(np.zeros((5, 3)))


def test_gaussian_face_has_no_pseudo_likelihood():
    assert not hasattr(GAUSSIAN, "score_samples")
