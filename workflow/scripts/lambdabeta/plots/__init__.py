"""Figures, one module per concern: ``linear`` (Figs 2-3, the contraction and phase figures),
``sweeps`` (Figs 4-5), ``tchebycheff`` (Fig 6), ``images`` (Figs 7 and 9), ``information``
(Fig 8), ``adaptive`` (the adaptive λ figure), ``samples`` (the datasets' samples); what they
share: ``common``, ``heatmaps``, ``style``; what the entry scripts dispatch to: ``dispatch``."""
