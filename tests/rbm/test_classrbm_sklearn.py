"""The ClassRBM as a scikit-learn classifier: the estimator checks, pipelines, -1 as unlabeled."""

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuralsmith.sklearn import ClassRBMClassifier, OutOfRangeWarning

# No expected failures: data outside [0, 1] is clipped (with a warning in fit), so every check
# applies. 30 epochs let the clipped blobs of check_classifiers_train reach its 0.83 accuracy.
BERNOULLI = ClassRBMClassifier(n_components=8, n_iter=30, random_state=0)
GAUSSIAN = ClassRBMClassifier(n_components=16, n_iter=30, learning_rate=0.05, visible="gaussian",
                              random_state=0)


@pytest.mark.filterwarnings("ignore::neuralsmith.sklearn.OutOfRangeWarning")  # checks feed [0, 3]
@parametrize_with_checks([BERNOULLI, GAUSSIAN])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def digits01():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target


def test_it_classifies_digits_in_a_pipeline(digits01):
    x, y = digits01
    pipe = make_pipeline(MinMaxScaler(clip=True), ClassRBMClassifier(
        n_components=64, n_iter=10, schedule="constant", random_state=0))  # 10 epochs: no decay
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


def test_fit_warns_and_clips_inputs_outside_0_1(digits01):
    x, y = digits01
    with pytest.warns(OutOfRangeWarning, match=r"outside \[0, 1\]"):
        a = ClassRBMClassifier(n_components=8, n_iter=2, random_state=0).fit(x[:200] * 16, y[:200])
    b = ClassRBMClassifier(n_components=8, n_iter=2, random_state=0).fit(
        np.clip(x[:200] * 16, 0, 1), y[:200])
    assert np.array_equal(a.predict_proba(x[:20]), b.predict_proba(x[:20]))


def test_predict_clips_held_out_rows_silently(digits01, recwarn):
    x, y = digits01
    clf = ClassRBMClassifier(n_components=8, n_iter=2, random_state=0).fit(x[:200], y[:200])
    held_out = x[200:240] * 1.2 - 0.1
    assert np.array_equal(clf.predict_proba(held_out), clf.predict_proba(np.clip(held_out, 0, 1)))
    assert np.array_equal(clf.predict(held_out), clf.predict(np.clip(held_out, 0, 1)))
    assert not [w for w in recwarn if issubclass(w.category, OutOfRangeWarning)]


def test_scaler_fitted_on_a_fold_scores_unseen_rows(digits01):
    x, y = digits01
    pipe = make_pipeline(MinMaxScaler(), ClassRBMClassifier(n_components=32, n_iter=10,
                                                           random_state=0))
    scores = cross_val_score(pipe, x[:600] * 16, y[:600], cv=3, error_score="raise")
    assert np.isfinite(scores).all() and scores.min() > 0.7
