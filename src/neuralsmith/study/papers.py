"""Published test errors to print beside a suite's own, each figure with where it was read.

Only figures checked against a source we could read are here; a model or data set left out
prints as a blank. Keys are our data-source names (the paper's ``mnist-basic`` is our
``mnist`` with the paper's 10 000 + 2 000 / 50 000 split approximated, see
``configs/larochelle2007.toml``) and the suite's model names (:data:`MODELS`).

Not yet filled in (could not be checked from the sources at hand): the rest of Larochelle et
al.'s (2007) table and the SdA-3 column of Vincent et al. (2008). The MNIST ``rot`` and
``rot-bg-img`` sets exist in two versions, the ICML paper's and a corrected one whose
revised figures are on the paper's web page, so a figure added for them must say which.

References:
    Larochelle, Erhan, Courville, Bergstra & Bengio (2007). An empirical evaluation of deep
    architectures on problems with many factors of variation. ICML.
    Vincent, Larochelle, Bengio & Manzagol (2008). Extracting and composing robust features
    with denoising autoencoders. ICML.
    Komer, Bergstra & Eliasmith (2014). Hyperopt-Sklearn: automatic hyperparameter
    configuration for Scikit-learn. SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass

# The paper's models as (start, depth) of a study: NNet is a randomly initialized
# single-hidden-layer sigmoid net, DBN-k and SdA-k are k-hidden-layer nets pre-trained
# greedily as RBMs (Larochelle et al., 2007) or denoising autoencoders (Vincent et al., 2008).
MODELS: dict[str, tuple[str, int]] = {"NNet": ("uniform", 1), "DBN-1": ("dbn", 1),
                                      "DBN-3": ("dbn", 3), "SdA-3": ("sda", 3)}


@dataclass(frozen=True)
class Figure:
    """One published test error (%) and the source it was read from."""

    error: float
    source: str


FIGURES: dict[tuple[str, str], Figure] = {
    # Komer et al. (2014), table of scores from the literature: "dbn-3 81.4%" accuracy on
    # Convex Shapes, cited as [Lar07]; one decimal, as that table gives it.
    ("convex", "DBN-3"): Figure(18.6, "Larochelle et al. (2007), as 81.4% accuracy in Komer et al. (2014)"),
}


def paper_figure(data: str, model: str) -> Figure | None:
    """The published test error of ``model`` on ``data``, or None where we have none.

    Example:
        >>> paper_figure("convex", "DBN-3").error, paper_figure("fashion-mnist", "DBN-3")
        (18.6, None)
    """
    return FIGURES.get((data, model))
