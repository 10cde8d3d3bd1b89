# Deep λβ-VAE training (paper §5.2): phase 1 stabilizes a β-VAE (λ = 0) per (dataset, β, seed);
# phase 2 finetunes exactly that checkpoint with a fresh Adam for every λ (λ = 0 included).
# Each run checkpoints into a `.progress-*` folder that is not an output, so a killed or
# preempted job resumes where it stopped instead of starting over.
#
# Packed training (deep.train.pack_size > 1) trains several runs in one job and process, each
# run writing exactly the files of its own job: the one-run rules `stabilize` and `finetune`
# can produce every run, and one rule per pack of runs not yet trained is added before them
# (lambdabeta.plan.training). Every training job records the same code: one `rule:` block
# defines them all, and Snakemake records a script rule's `script:` line. So changing pack_size
# retrains nothing, and adding a seed or a λ trains only the new runs.


for job in TRAINING_RULES:

    rule:
        name:
            job.name
        input:
            **training_input(job),
        output:
            **job.output,
        log:
            job.log,
        benchmark:
            costs.benchmark_file(job.log)
        conda:
            "../../envs/torch.yaml"
        threads: RESOURCES[job.phase]["threads"]
        resources:
            **job_resources(job.phase),
        params:
            settings=training_science(job),
            members=job.members,
        script:
            "../scripts/train.py"

    if job.packed:
        workflow.ruleorder(job.name, job.phase)
    if job.packed or job.adaptive:
        inherit_profile_settings(job.name, job.phase)
