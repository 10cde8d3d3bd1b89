"""λβ-VAE reproduction: the logic behind every stage of the pipeline.

Modules, one per stage of the workflow:

- ``linear``      closed-form linear-Gaussian VAE, fixed-point iteration and AdamW (paper §3-5.1)
- ``download``    verified, resumable downloads of the upstream dataset files
- ``prepare``     conversion of upstream files into the uniform on-disk format
- ``procedural``  an offline, procedurally rendered dSprites
- ``loader``      the uniform on-disk format, and uint8 images on the training device
- ``model``       the convolutional VAE of Table 1 and the λβ objective
- ``train``       seeded, resumable training (stabilization and finetuning)
- ``metrics``     MIG, SAP, I_m and discrete mutual information (disentanglement_lib conventions)
- ``evaluate``    evaluation of one checkpoint
- ``aggregate``   tidy tables over runs
- ``selection``   augmented Tchebycheff selection of (β, λ)
- ``plots``       every figure
"""

__version__ = "0.1.0"
