"""The scikit-learn face: the estimator checks, and parity with BernoulliRBM's behaviour."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuralsmith.sklearn import OutOfRangeWarning, RBMTransformer

# Only checks that cannot apply: score_samples is BernoulliRBM's stochastic pseudo-likelihood
# (one unit per row, drawn from random_state on each call), so a row's score depends on the
# rows scored with it. Every other check passes, data outside [0, 1] included (clipped).
_STOCHASTIC = ("score_samples flips one randomly drawn unit per row (BernoulliRBM's estimator), "
               "so a row's score depends on the rows scored beside it")
BERNOULLI_XFAIL = {"check_methods_sample_order_invariance": _STOCHASTIC,
                   "check_methods_subset_invariance": _STOCHASTIC}
BERNOULLI = RBMTransformer(n_components=4, n_iter=2, random_state=0)
GAUSSIAN = RBMTransformer(n_components=4, n_iter=2, visible="gaussian", learning_rate=0.01,
                          random_state=0)


@pytest.mark.filterwarnings("ignore::neuralsmith.sklearn.OutOfRangeWarning")  # checks feed [0, 3]
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


def test_fit_warns_and_clips_data_outside_unit_interval(digits01):
    x, _ = digits01
    raw = x[:100] * 16  # digits' 0..16 pixel values, unscaled
    with pytest.warns(OutOfRangeWarning, match=r"outside \[0, 1\].*MinMaxScaler"):
        a = RBMTransformer(n_components=4, n_iter=2, random_state=0).fit(raw)
    b = RBMTransformer(n_components=4, n_iter=2, random_state=0).fit(np.clip(raw, 0, 1))
    assert np.array_equal(a.components_, b.components_)


def test_warning_as_error_refuses_data_outside_unit_interval():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfRangeWarning)
        with pytest.raises(OutOfRangeWarning, match="Scale X first"):
            RBMTransformer(n_components=2).fit(np.full((5, 3), 2.0))


def test_transform_clips_held_out_rows_silently(digits01, recwarn):
    x, _ = digits01
    est = RBMTransformer(n_components=6, n_iter=2, random_state=0).fit(x[:200])
    held_out = x[200:220] * 1.2 - 0.1  # a fold's scaler maps unseen rows slightly outside
    clipped = np.clip(held_out, 0, 1)
    assert np.array_equal(est.transform(held_out), est.transform(clipped))
    assert np.array_equal(est.score_samples(held_out), est.score_samples(clipped))
    assert not [w for w in recwarn if issubclass(w.category, OutOfRangeWarning)]


def test_in_range_features_match_bernoulli_rbm_formula(digits01):
    x, _ = digits01
    est = RBMTransformer(n_components=6, n_iter=1, random_state=0).fit(x[:100])
    sk = BernoulliRBM(n_components=6)  # transform = sigmoid(X W^T + c), given the parameters
    sk.components_, sk.intercept_hidden_ = est.components_, est.intercept_hidden_
    sk.intercept_visible_ = est.intercept_visible_
    assert np.allclose(est.transform(x[100:120]), sk.transform(x[100:120]), atol=1e-6)


def test_grid_search_scores_every_fold_as_bernoulli_rbm_does(digits01):
    x, y = digits01
    x, y = x[:900] * 16, y[:900]  # raw pixels: each fold's scaler maps some test rows above 1
    grid = {"rbm__n_components": [16, 32], "rbm__learning_rate": [0.05, 0.1]}
    scores = {}
    for name, rbm in [("ours", RBMTransformer(n_iter=5, batch_size=20, random_state=0)),
                      ("sklearn", BernoulliRBM(n_iter=5, batch_size=20, random_state=0))]:
        pipe = Pipeline([("scale", MinMaxScaler()), ("rbm", rbm),
                         ("clf", LogisticRegression(max_iter=200))])
        search = GridSearchCV(pipe, grid, cv=3, error_score="raise").fit(x, y)
        folds = np.array([search.cv_results_[f"split{i}_test_score"] for i in range(3)])
        assert folds.shape == (3, 4) and np.isfinite(folds).all(), name
        scores[name] = search.best_score_
    assert scores["ours"] > 0.5 and scores["ours"] > scores["sklearn"] - 0.05, scores


def test_bad_method_reaches_the_user():
    with pytest.raises(ValueError, match="method must be one of cd, pcd, fpcd"):
        RBMTransformer(n_components=2, method="exact").fit(np.zeros((5, 3)))


def test_gaussian_face_has_no_pseudo_likelihood():
    assert not hasattr(GAUSSIAN, "score_samples")
