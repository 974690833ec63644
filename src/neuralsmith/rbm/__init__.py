"""Restricted Boltzmann machines ("harmoniums"): the model, its learning and its likelihood.

Example:
    >>> import torch
    >>> from neuralsmith import rbm
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.bernoulli(torch.full((30, 5), 0.4), generator=g)
    >>> model = rbm.RBM.from_data(x, 3, generator=g)
    >>> hist = rbm.train(model, x, epochs=1, batch_size=10, method="pcd", generator=g, progress=False)
    >>> ll = rbm.log_likelihood(model, x, rbm.exact_log_partition(model))
    >>> abs(ll - 5 * -0.67) < 0.5  # near the entropy of 5 coins with p = 0.4
    True
"""

from neuralsmith.rbm import classrbm, dbm, dbm_ais, dbm_learning, mixing, tempering, units
from neuralsmith.rbm.classrbm import ClassRBM, ClassSettings, train_classrbm
from neuralsmith.rbm.learning import METHODS, History, Settings, free_energy_gap, \
    reconstruction_error, train
from neuralsmith.rbm.dbm import DBM
from neuralsmith.rbm.model import RBM, load, save
from neuralsmith.rbm.partition import AISResult, ais_log_partition, default_betas, \
    exact_log_partition, log_likelihood, pseudo_likelihood

__all__ = ["AISResult", "ClassRBM", "ClassSettings", "DBM", "History", "METHODS", "RBM", "Settings",
           "ais_log_partition", "classrbm", "dbm", "dbm_ais", "dbm_learning", "mixing", "tempering",
           "default_betas", "exact_log_partition", "free_energy_gap", "load", "log_likelihood",
           "pseudo_likelihood", "reconstruction_error", "save", "train", "train_classrbm", "units"]
