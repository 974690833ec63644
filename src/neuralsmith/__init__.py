"""neuralsmith: start neural networks out right.

Initializers, vanishing/exploding-gradient diagnostics, RBM/DBN/SdA pre-training and hybrid
models, each ending as a plain PyTorch module.

Example:
    >>> import neuralsmith
    >>> ds = neuralsmith.data.load("digits")
    >>> ds.x_train.shape[1]
    64
"""

from importlib.metadata import PackageNotFoundError, version as _version

from neuralsmith import data, diagnostics, hybrid, init, linear_depth, nets, rbm, rnn

try:
    __version__ = _version("neuralsmith")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "data", "diagnostics", "hybrid", "init", "linear_depth", "nets", "rbm", "rnn"]
