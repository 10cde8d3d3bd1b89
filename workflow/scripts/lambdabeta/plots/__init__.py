"""Figures: ``linear`` (Figs 2-3 and the contraction figure) and ``deep`` (Figs 4-8)."""
