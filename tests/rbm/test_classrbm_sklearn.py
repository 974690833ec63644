"""The ClassRBM as a scikit-learn classifier: the estimator checks, pipelines, -1 as unlabeled."""

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuralsmith.sklearn import ClassRBMClassifier

# Bernoulli visible units reject X outside [0, 1] (a documented contract); these checks feed
# unbounded data. The Gaussian-visible instance runs each of them.
_UNBOUNDED = ("feeds data outside [0, 1], which Bernoulli visible units reject; "
              "the visible='gaussian' instance passes this check")
BERNOULLI_XFAIL = {name: _UNBOUNDED for name in [
    "check_estimators_dtypes", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_pipeline_consistency",
    "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array",
    "check_classifiers_classes", "check_classifiers_train",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_dont_overwrite_parameters", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d", "check_estimators_partial_fit_n_features",
    "check_classifiers_partial_fit_n_features"
]}
BERNOULLI = ClassRBMClassifier(n_components=8, n_iter=5, random_state=0)
GAUSSIAN = ClassRBMClassifier(n_components=16, n_iter=30, learning_rate=0.05, visible="gaussian",
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


def test_it_classifies_digits_in_a_pipeline(digits01):
    x, y = digits01
    pipe = make_pipeline(MinMaxScaler(clip=True), ClassRBMClassifier(n_components=64, n_iter=10,
                                                                  random_state=0))
    assert pipe.fit(x[:1200], y[:1200]).score(x[1200:], y[1200:]) > 0.9


@pytest.mark.parametrize("unsupervised", ["likelihood", "entropy"])
def test_minus_one_marks_unlabeled_rows(digits01, unsupervised):
    x, y = digits01
    y = y.copy()
    y[200:1200] = -1
    clf = ClassRBMClassifier(n_components=32, n_iter=10, learning_rate=0.1, unsupervised=unsupervised,
                             objective="semisupervised", random_state=0)
    clf.fit(x[:1200], y[:1200])
    assert clf.classes_.tolist() == list(range(10))
    assert clf.score(x[1200:], digits01[1][1200:]) > 0.6


def test_string_classes_and_probabilities(digits01):
    x, y = digits01
    names = np.array(list("abcdefghij"))[y]
    clf = ClassRBMClassifier(n_components=16, n_iter=3, random_state=0).fit(x[:300], names[:300])
    p = clf.predict_proba(x[:5])
    assert p.shape == (5, 10) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert set(clf.predict(x[:50])) <= set("abcdefghij")


def test_partial_fit_learns_in_chunks(digits01):
    x, y = digits01
    clf = ClassRBMClassifier(n_components=32, learning_rate=0.1, random_state=0)
    for lo in [*range(0, 1200, 300)] * 3:
        clf.partial_fit(x[lo:lo + 300], y[lo:lo + 300], classes=np.arange(10))
    assert clf.score(x[1200:], y[1200:]) > 0.6


def test_same_random_state_same_model(digits01):
    x, y = digits01
    a = ClassRBMClassifier(n_components=8, n_iter=2, random_state=1).fit(x[:200], y[:200])
    b = ClassRBMClassifier(n_components=8, n_iter=2, random_state=1).fit(x[:200], y[:200])
    assert np.array_equal(a.predict_proba(x[:20]), b.predict_proba(x[:20]))


def test_cross_validation_runs(digits01):
    x, y = digits01
    scores = cross_val_score(ClassRBMClassifier(n_components=16, n_iter=5, learning_rate=0.2,
                                                random_state=0),
                             x[:300], y[:300], cv=3)
    assert scores.shape == (3,) and scores.min() > 0.3


def test_unseen_class_in_partial_fit_is_refused(digits01):
    x, y = digits01
    clf = ClassRBMClassifier(n_components=4).partial_fit(x[:20], y[:20] % 2, classes=[0, 1])
    with pytest.raises(ValueError, match="pass every class to the first partial_fit"):
        clf.partial_fit(x[:20], y[:20])


def test_inputs_outside_0_1_are_refused_for_bernoulli_units(digits01):
    x, y = digits01
    with pytest.raises(ValueError, match=r"X must lie in \[0, 1\]"):
        ClassRBMClassifier().fit(x * 16, y)
