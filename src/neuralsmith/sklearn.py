"""A scikit-learn face for neuralsmith models, so they drop into pipelines.

:class:`RBMTransformer` mirrors :class:`sklearn.neural_network.BernoulliRBM` (same parameter
names and defaults where they overlap, ``fit / partial_fit / transform / score_samples``),
trained by :func:`neuralsmith.rbm.train`. :class:`ClassRBMClassifier` is a classification
RBM (:class:`neuralsmith.rbm.ClassRBM`) as a scikit-learn classifier.

Bernoulli visible units model values in [0, 1]. ``fit`` / ``partial_fit`` check the range: data
outside it raises an :class:`OutOfRangeWarning` naming how much lies outside, and is clipped to
[0, 1] (turn the warning into an error with ``warnings.simplefilter("error",
OutOfRangeWarning)`` to refuse such data). ``transform``, ``predict``, ``predict_proba`` and
``score_samples`` clip silently, so the held-out rows a fold's ``MinMaxScaler`` maps slightly
outside [0, 1] are handled. BernoulliRBM does not check the range at all; on data in [0, 1]
clipping changes nothing, so both behave alike there.

Example:
    >>> import numpy as np
    >>> X = (np.random.RandomState(0).rand(40, 6) > 0.5).astype(np.float32)
    >>> RBMTransformer(n_components=3, n_iter=2, random_state=0).fit_transform(X).shape
    (40, 3)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin, \
    TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from neuralsmith.rbm import RBM, ClassRBM, ClassSettings, pseudo_likelihood, train, train_classrbm
from neuralsmith.settings import default_of

__all__ = ["ClassRBMClassifier", "OutOfRangeWarning", "RBMTransformer"]


class OutOfRangeWarning(UserWarning):
    """Training data outside [0, 1] met Bernoulli visible units and was clipped to [0, 1]."""


def clip_unit_interval(X: np.ndarray, visible: str, *, warn: bool) -> np.ndarray:
    """X clipped to [0, 1] for Bernoulli visible units (unchanged for Gaussian ones).

    Args:
        X: validated 2-D float array.
        visible: the estimator's visible unit type.
        warn: raise an :class:`OutOfRangeWarning` when any value lies outside [0, 1] (``fit``).

    Returns:
        X itself when nothing lies outside [0, 1], else a clipped copy.
    """
    if visible != "bernoulli" or not X.size:
        return X
    low, high = X.min(), X.max()
    if low >= 0 and high <= 1:
        return X
    if warn:
        outside = int(np.count_nonzero((X < 0) | (X > 1)))
        warnings.warn(f"{outside} of {X.size} values of X lie outside [0, 1] (from {low:g} to "
                      f"{high:g}); Bernoulli visible units take them clipped to [0, 1]. Scale X "
                      "first (e.g. MinMaxScaler), or use visible='gaussian' on standardized data",
                      OutOfRangeWarning, stacklevel=4)
    return np.clip(X, 0, 1)


class RBMTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Restricted Boltzmann machine features, ``transform(X) = E[h | v = X]``.

    Parameters:
        n_components: hidden units.
        learning_rate, batch_size, n_iter: as BernoulliRBM (``n_iter`` = epochs).
        method: ``"pcd"`` (BernoulliRBM's), ``"cd"`` or ``"fpcd"``; ``k`` Gibbs steps.
        momentum, weight_decay: see :func:`neuralsmith.rbm.train` (0 = BernoulliRBM's plain SGD).
        visible, hidden: unit types (``"bernoulli"``/``"gaussian"``, ``"bernoulli"``/``"relu"``).
        verbose: show a progress bar while fitting.
        random_state: seeds every draw; resolved in ``fit``.

    Attributes:
        rbm_: the trained :class:`neuralsmith.rbm.RBM`.
        components_, intercept_hidden_, intercept_visible_: its parameters as arrays, named as
            in BernoulliRBM.
        history_: the per-epoch :class:`neuralsmith.rbm.History` of the last fit.
        n_features_in_: number of features seen in ``fit``.

    Unlike BernoulliRBM, Bernoulli visible units see X clipped to [0, 1] (``fit`` warns with
    :class:`OutOfRangeWarning` when it clips; ``transform`` and ``score_samples`` clip silently,
    which on data in [0, 1] is BernoulliRBM's behaviour), the biases start from the data as
    Hinton (2010) advises, and each ``partial_fit`` call is one pass over its X in mini-batches
    whose persistent chains restart from h = 0.
    """

    def __init__(self, n_components: int = 256, *, learning_rate: float = 0.1,
                 batch_size: int = 10, n_iter: int = 10, method: str = "pcd", k: int = 1,
                 momentum: float = 0.0, weight_decay: float = 0.0, visible: str = "bernoulli",
                 hidden: str = "bernoulli", verbose: int = 0, random_state=None):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.visible = visible
        self.hidden = hidden
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X, y=None) -> "RBMTransformer":
        """Initialize from X and train ``n_iter`` epochs.

        Values outside [0, 1] (Bernoulli visible units) are clipped, with an
        :class:`OutOfRangeWarning`.
        """
        x = self._validate(X, reset=True, fitting=True)
        self._rng = check_random_state(self.random_state)
        generator = self._generator()
        self.rbm_ = RBM.from_data(x, self.n_components, visible=self.visible,
                                  hidden=self.hidden, generator=generator)
        self.history_ = self._train(x, self.n_iter, generator)
        return self

    def partial_fit(self, X, y=None) -> "RBMTransformer":
        """One pass over X; the first call initializes the model as ``fit`` would."""
        if not hasattr(self, "rbm_"):
            x = self._validate(X, reset=True, fitting=True)
            self._rng = check_random_state(self.random_state)
            self.rbm_ = RBM.from_data(x, self.n_components, visible=self.visible,
                                      hidden=self.hidden, generator=self._generator())
        else:
            x = self._validate(X, reset=False, fitting=True)
        self.history_ = self._train(x, 1, self._generator())
        return self

    def transform(self, X) -> np.ndarray:
        """Hidden-unit means :math:`E[h \\mid v = X]`, shape (n_samples, n_components).

        Bernoulli visible units see X clipped to [0, 1], silently (held-out rows a scaler maps
        slightly outside); BernoulliRBM does not check the range, and on data in [0, 1] both
        agree.
        """
        check_is_fitted(self)
        x = self._validate(X, reset=False)
        with torch.no_grad():
            return self.rbm_.hidden_probs(x.to(self.rbm_.weight.dtype)).numpy().astype(x.numpy().dtype)

    @available_if(lambda self: self.visible == "bernoulli")
    def score_samples(self, X) -> np.ndarray:
        """Stochastic pseudo-likelihood per sample, as BernoulliRBM (one unit flipped each).

        X is clipped to [0, 1] first, silently, as in :meth:`transform`.
        """
        check_is_fitted(self)
        x = self._validate(X, reset=False).to(self.rbm_.weight.dtype)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return pseudo_likelihood(self.rbm_, x, torch.Generator().manual_seed(seed)).numpy()

    def gibbs(self, v) -> np.ndarray:
        """One Gibbs step v -> h -> v from the rows of ``v`` (clipped to [0, 1] as in transform)."""
        check_is_fitted(self)
        x = self._validate(v, reset=False).to(self.rbm_.weight.dtype)
        with torch.no_grad():
            return self.rbm_.gibbs(x, 1, self._generator()).numpy()

    @property
    def components_(self) -> np.ndarray:
        return self.rbm_.weight.detach().numpy().copy()

    @property
    def intercept_hidden_(self) -> np.ndarray:
        return self.rbm_.hidden_bias.detach().numpy().copy()

    @property
    def intercept_visible_(self) -> np.ndarray:
        return self.rbm_.visible_bias.detach().numpy().copy()

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    def _validate(self, X, reset: bool, fitting: bool = False) -> torch.Tensor:
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=reset)
        X = clip_unit_interval(X, self.visible, warn=fitting)
        return torch.from_numpy(np.require(X, requirements=["C", "W"]))  # a copy if read-only

    def _generator(self) -> torch.Generator:
        if not hasattr(self, "_rng"):
            self._rng = check_random_state(self.random_state)
        return torch.Generator().manual_seed(int(self._rng.randint(np.iinfo(np.int32).max)))

    def _train(self, x: torch.Tensor, epochs: int, generator: torch.Generator):
        return train(self.rbm_, x, epochs=epochs, batch_size=self.batch_size,
                     lr=self.learning_rate, k=self.k, method=self.method,
                     momentum=self.momentum, weight_decay=self.weight_decay,
                     generator=generator, progress=bool(self.verbose))

    def __sklearn_tags__(self):
        """Dense 2-D float input without NaN; negative values are clipped, not refused."""
        tags = accepts_dense_reals(super().__sklearn_tags__())
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def accepts_dense_reals(tags):
    """Set the input tags both estimators share: dense 2-D arrays of finite reals.

    Bernoulli visible units clip to [0, 1] rather than refuse values outside it, so
    ``positive_only`` stays False (scikit-learn has no tag for a bounded range).
    """
    tags.input_tags.two_d_array = True
    tags.input_tags.sparse = False
    tags.input_tags.allow_nan = False
    tags.input_tags.positive_only = False
    tags.input_tags.categorical = tags.input_tags.string = False
    return tags


UNLABELED = -1  # scikit-learn's mark for a row without a label (as in SelfTrainingClassifier)


class ClassRBMClassifier(ClassifierMixin, BaseEstimator):
    """A classification RBM (Larochelle et al. 2012) as a scikit-learn classifier.

    Parameters:
        n_components: hidden units.
        objective: ``"generative"``, ``"discriminative"``, ``"hybrid"`` or
            ``"semisupervised"``; with the latter, rows whose label is -1 are unlabeled.
        alpha, beta, supervised, unsupervised: see :class:`neuralsmith.rbm.ClassSettings`
            (``unsupervised="entropy"`` by default, as there).
        learning_rate, schedule, batch_size, n_iter (epochs), method (``cd``/``pcd``), k,
            momentum, weight_decay: see :func:`neuralsmith.rbm.train_classrbm`. ``schedule``
            (default ``"linear"``, as ClassSettings) decays the rate over the ``n_iter`` epochs
            of ``fit``; each ``partial_fit`` call is one epoch at the full ``learning_rate``.
        visible, hidden: unit types (``"bernoulli"``/``"gaussian"``, ``"bernoulli"``/``"relu"``).
        verbose: show a progress bar while fitting.
        random_state: seeds every draw; resolved in ``fit``.

    Attributes:
        model_: the trained :class:`neuralsmith.rbm.ClassRBM`.
        classes_: the class labels; ``n_features_in_``; ``history_`` of the last fit.

    Bernoulli visible units see X clipped to [0, 1]: ``fit`` / ``partial_fit`` warn with
    :class:`OutOfRangeWarning` when they clip, ``predict`` / ``predict_proba`` clip silently.

    Example:
        >>> X = np.random.RandomState(0).rand(60, 4)
        >>> y = (X[:, 0] > 0.5).astype(int)
        >>> clf = ClassRBMClassifier(n_components=8, n_iter=30, learning_rate=0.2,
        ...                          random_state=0).fit(X, y)
        >>> clf.score(X, y) > 0.9
        True
    """

    def __init__(self, n_components: int = 100, *, objective: str = "hybrid", alpha: float = 0.01,
                 beta: float = 0.1, supervised: str = "hybrid",
                 unsupervised: str = default_of(ClassSettings, "unsupervised"),
                 learning_rate: float = 0.05,
                 schedule: str = default_of(ClassSettings, "schedule"),
                 batch_size: int = 20, n_iter: int = 20, method: str = "cd", k: int = 1,
                 momentum: float = 0.9, weight_decay: float = 0.0, visible: str = "bernoulli",
                 hidden: str = "bernoulli", verbose: int = 0, random_state=None):
        self.n_components = n_components
        self.objective = objective
        self.alpha = alpha
        self.beta = beta
        self.supervised = supervised
        self.unsupervised = unsupervised
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.visible = visible
        self.hidden = hidden
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X, y) -> "ClassRBMClassifier":
        """Initialize from (X, y) and train ``n_iter`` epochs (-1 labels: unlabeled rows).

        Values outside [0, 1] (Bernoulli visible units) are clipped, with an
        :class:`OutOfRangeWarning`.
        """
        x, y = self._validate_xy(X, y, reset=True)
        self._rng = check_random_state(self.random_state)
        labeled = self._labeled(y)
        self.classes_ = np.unique(y[labeled])
        self._start(x, y, labeled)
        self.history_ = self._train(x, y, labeled, self.n_iter)
        return self

    def partial_fit(self, X, y, classes=None) -> "ClassRBMClassifier":
        """One epoch over (X, y); the first call needs ``classes`` (or takes those in y)."""
        first = not hasattr(self, "model_")
        x, y = self._validate_xy(X, y, reset=first)
        labeled = self._labeled(y)
        if first:
            self._rng = check_random_state(self.random_state)
            self.classes_ = np.unique(y[labeled] if classes is None else classes)
            self._start(x, y, labeled)
        self.history_ = self._train(x, y, labeled, 1)
        return self

    def predict_log_proba(self, X) -> np.ndarray:
        r""":math:`\log p(y \mid x)` per class, in the order of ``classes_``.

        Bernoulli visible units see X clipped to [0, 1], silently (held-out rows a scaler maps
        slightly outside); on data in [0, 1] clipping changes nothing.
        """
        check_is_fitted(self)
        x = self._validate(X)
        return self.model_.log_proba(x.to(self.model_.weight.dtype)).numpy().astype(x.numpy().dtype)

    def predict_proba(self, X) -> np.ndarray:
        r""":math:`p(y \mid x)` per class, computed exactly from free energies (X clipped to [0, 1])."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row (X clipped to [0, 1], as in predict_proba)."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_log_proba(X), axis=1)]

    def _labeled(self, y: np.ndarray) -> np.ndarray:
        if self.objective == "semisupervised" and y.dtype.kind in "iuf":
            return y != UNLABELED
        return np.ones(len(y), dtype=bool)

    def _start(self, x: torch.Tensor, y: np.ndarray, labeled: np.ndarray) -> None:
        if len(self.classes_) < 2:
            raise ValueError(f"ClassRBMClassifier needs at least 2 classes in y; got "
                             f"{len(self.classes_)} class ({self.classes_.tolist()})")
        yl = torch.from_numpy(np.searchsorted(self.classes_, y[labeled]))
        self.model_ = ClassRBM.from_data(x[torch.from_numpy(labeled)], yl, self.n_components,
                                         n_classes=len(self.classes_), visible=self.visible,
                                         hidden=self.hidden, generator=self._generator())

    def _train(self, x: torch.Tensor, y: np.ndarray, labeled: np.ndarray, epochs: int):
        unknown = ~np.isin(y[labeled], self.classes_)
        if unknown.any():
            raise ValueError(f"y holds classes {np.unique(y[labeled][unknown]).tolist()} not in "
                             f"classes_ {self.classes_.tolist()}; pass every class to the first partial_fit")
        mask = torch.from_numpy(labeled)
        yl = torch.from_numpy(np.searchsorted(self.classes_, y[labeled]))
        xu = x[~mask] if (~mask).any() else None
        return train_classrbm(self.model_, x[mask], yl, epochs=epochs, objective=self.objective,
                              alpha=self.alpha, beta=self.beta, supervised=self.supervised,
                              unsupervised=self.unsupervised,
                              x_unlabeled=xu, batch_size=self.batch_size, lr=self.learning_rate,
                              schedule=self.schedule,
                              k=self.k, method=self.method, momentum=self.momentum,
                              weight_decay=self.weight_decay, generator=self._generator(),
                              progress=bool(self.verbose))

    def _validate_xy(self, X, y, reset: bool) -> tuple[torch.Tensor, np.ndarray]:
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=reset)
        check_classification_targets(y)
        return self._tensor(clip_unit_interval(X, self.visible, warn=True)), y

    def _validate(self, X) -> torch.Tensor:
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return self._tensor(clip_unit_interval(X, self.visible, warn=False))

    @staticmethod
    def _tensor(X: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(X, copy=True, order="C"))

    def _generator(self) -> torch.Generator:
        if not hasattr(self, "_rng"):
            self._rng = check_random_state(self.random_state)
        return torch.Generator().manual_seed(int(self._rng.randint(np.iinfo(np.int32).max)))

    def __sklearn_tags__(self):
        """Dense 2-D float input without NaN; multi-class, single-output targets."""
        tags = accepts_dense_reals(super().__sklearn_tags__())
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags
