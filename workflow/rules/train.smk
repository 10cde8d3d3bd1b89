# Deep λβ-VAE training (paper §5.2): phase 1 stabilizes a β-VAE (λ = 0) per (dataset, β, seed);
# phase 2 finetunes exactly that checkpoint with a fresh Adam for every λ (λ = 0 included).
# Each run checkpoints into a `.progress-*` folder that is not an output, so a killed or
# preempted job resumes where it stopped instead of starting over.
#
# Packed training (deep.train.pack_size > 1) trains several runs in one job and process, each
# run writing exactly the files of its own job. Design:
# - The one-run rules `stabilize` and `finetune` (wildcards) can produce every run.
# - At parse time, one rule per pack is added, with explicit outputs: the runs of a fixed block
#   (pack_size consecutive seeds of one (dataset, β); λ of one stabilized model) that are not yet
#   trained with today's science (common.smk: trained, training_rules). A `ruleorder` puts it
#   before the one-run rule, and it takes the profile's `set-resources`/`set-threads` of its
#   phase's rule.
# - Finished runs are never in a pack: Snakemake deletes and rewrites every output of a job it
#   runs, so a pack holding a finished run would train it again. A finished run keeps its
#   one-run rule as producer, and that job is up to date: both kinds of job record the same
#   params (the phase's shared science; a run's β, λ and seed are in its path), the same input
#   (the dataset, and for finetunes the one stabilized model their pack starts from) and the same
#   code (one `rule:` block defines them all; Snakemake records a script rule's `script:` line).
# So changing pack_size retrains nothing, adding a seed or a λ trains only the new runs (packed
# when their block has two or more), and a science change plans the packs again. A block with
# one run to train makes no pack: that run trains alone.


for job in training_rules():

    rule:
        name:
            job.name
        input:
            **job.input,
        output:
            **job.output,
        log:
            job.log,
        conda:
            "../../envs/torch.yaml"
        threads: RESOURCES[job.phase]["threads"]
        resources:
            gpu=RESOURCES[job.phase]["gpu"],
            mem_mb=RESOURCES[job.phase]["mem_mb"],
            runtime=runtime(job.phase),
        params:
            settings=train_params(job.phase),
            members=job.members,
        script:
            "../scripts/train.py"

    if job.packed:
        workflow.ruleorder(job.name, job.phase)
        inherit_profile_settings(job.name, job.phase)
