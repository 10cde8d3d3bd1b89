"""λβ-VAE reproduction: the logic behind every stage of the pipeline.

Modules, one per stage of the workflow:

- ``linear``      closed-form linear-Gaussian VAE, fixed-point iteration and AdamW (paper §3-5.1)
- ``download``    verified, resumable downloads of the upstream dataset files
- ``prepare``     conversion of upstream files into the uniform on-disk format
- ``formats``     the reader of each upstream dataset format, behind one mapping
- ``procedural``  an offline, procedurally rendered dSprites
- ``loader``      the uniform on-disk format, and uint8 images on the training device
- ``model``       the convolutional VAE of Table 1 and the λβ objective
- ``training``    seeded, resumable training (stabilization and finetuning), alone or packed
- ``metrics``     MIG, SAP, I_m, DCI, the FactorVAE score (disentanglement_lib conventions)
- ``scores``      the score vocabulary: each quantity's columns, labels, format, direction
- ``evaluate``    evaluation of one checkpoint (``evaluation``: its passes, split, scorers)
- ``aggregate``   tidy tables over runs (``effects``: the paired effect of λ)
- ``selection``   augmented Tchebycheff selection of (β, λ)
- ``statistics``  the claims' tests (``sign_flip``, ``binomial``; ``calibration``: their error
                  rates measured by simulation)
- ``claims``      every claim of the paper, judged from the run's tables
- ``plan``        what the workflow decides before a job runs (standard library only)
- ``plots``       every figure
"""

__version__ = "0.1.0"
