# Every figure is its own rule and target; figures read tables (or the small files evaluation
# writes), never models, so re-rendering one is cheap and retrains nothing.
#
# The figures are declared once, in lambdabeta.plan.figures: name, report entry, inputs, params
# and the function that draws it (its `params.figure`, dispatched by the entry script through
# lambdabeta.plots.dispatch). One `rule:` block per entry script defines their rules: Snakemake
# evaluates a rule's `script:` line when a job runs, after the loop has moved on, so each block
# names its script literally.


for figure in figures.drawn_by(figures.PLOT_LINEAR):

    rule:
        name:
            figure.name
        input:
            **figure.inputs(config),
        output:
            **figure_outputs(figure),
        log:
            figure.log,
        benchmark:
            costs.benchmark_file(figure.log)
        localrule: True
        conda:
            "../../envs/analysis.yaml"
        params:
            **figure.params(config),
        script:
            "../scripts/plot_linear.py"


for figure in figures.drawn_by(figures.PLOT_DEEP):

    rule:
        name:
            figure.name
        input:
            **figure.inputs(config),
        output:
            **figure_outputs(figure),
        log:
            figure.log,
        benchmark:
            costs.benchmark_file(figure.log)
        localrule: True
        conda:
            "../../envs/analysis.yaml"
        params:
            **figure.params(config),
        script:
            "../scripts/plot_deep.py"
