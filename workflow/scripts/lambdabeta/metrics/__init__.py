"""Disentanglement metrics of a representation against discrete ground-truth factors.

The definitions follow disentanglement_lib (Locatello et al., 2019) exactly; only the layout and
the speed differ:

- **Orientation.** Every array here has one row per sample: codes are N × L (L latents), factors
  N × K (K factor class indices). disentanglement_lib stores the transposes (L × N, K × N), so
  its examples read with rows as variables; pass ``array.T`` to use them here.
- **Discretisation.** Each latent is cut into ``num_bins`` equal-width bins over its own observed
  range, with the edges of ``np.histogram``; bin ids start at 1 (``np.digitize`` on the left
  edges), the maximum falls into the last bin, and a constant latent falls into a single bin.
- **Information.** Entropies and mutual informations are plug-in estimates in nats on the
  empirical joint distribution of discrete labels (sklearn's ``mutual_info_score``), computed
  for all (latent, factor) pairs from contingency tables built with one ``np.bincount`` per
  factor.
- **Scores.** MIG is the mean over factors of the gap between the two most informative latents,
  divided by the factor's entropy; SAP the mean over factors of the gap between the two best
  one-latent classifiers' test accuracies; I_m the maximum-weight matching of latents to factors
  in the mutual information matrix; DCI (Eastwood & Williams, 2018) the importances of one
  gradient-boosted classifier per factor; the FactorVAE score (Kim & Mnih, 2018) the accuracy of
  a majority vote from the least-varying code dimension to the factor held fixed.

Edge cases have defined, finite values (disentanglement_lib gives NaN or fails on them):
a zero-entropy factor contributes 0 to MIG; with one latent the top-two gap is the top value
itself (the missing runner-up counts as 0); a factor with a single training class is predicted
as that class by every latent (SAP) or by its DCI classifier; DCI's entropy over a single
factor (or code) is 0.

Modules, one concern each: ``information`` (binning, entropies, mutual information), ``mig``
(top-two gap, MIG, I_m), ``sap``, ``null`` (plug-in bias, permutation null), ``dci``,
``factor_vae``; this package re-exports their public functions.
"""

from .dci import (
    dci,
    dci_completeness,
    dci_completeness_per_factor,
    dci_disentanglement,
    dci_disentanglement_per_code,
    dci_importance,
)
from .factor_vae import factor_vae_score
from .information import (
    discrete_entropy,
    discrete_mutual_information,
    discretize,
    mutual_information_matrix,
)
from .mig import im_score, matched_information, mig_per_factor, mutual_information_gap, top_two_gap
from .null import null_upper_point, permutation_null, plug_in_bias
from .sap import sap_accuracies, sap_matrix, sap_predictions, sap_score

__all__ = [
    "dci",
    "dci_completeness",
    "dci_completeness_per_factor",
    "dci_disentanglement",
    "dci_disentanglement_per_code",
    "dci_importance",
    "discrete_entropy",
    "discrete_mutual_information",
    "discretize",
    "factor_vae_score",
    "im_score",
    "matched_information",
    "mig_per_factor",
    "mutual_information_gap",
    "mutual_information_matrix",
    "null_upper_point",
    "permutation_null",
    "plug_in_bias",
    "sap_accuracies",
    "sap_matrix",
    "sap_predictions",
    "sap_score",
    "top_two_gap",
]
