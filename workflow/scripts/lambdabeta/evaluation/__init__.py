"""Evaluation of trained checkpoints: the forward passes over the evaluation images
(:mod:`.passes`), the images and random streams every model of a seed shares (:mod:`.split`),
the scoring functions (:mod:`.scorers`) and the settings (:mod:`.settings`);
``lambdabeta.evaluate`` runs them on one checkpoint and writes its files.

Kept free of imports here: the workflow definition imports :mod:`.settings` (standard library
only) without the rest."""
