# Seconds of work on files every job wrote: on a cluster they run where Snakemake runs.
localrules:
    aggregate,
    render,


rule aggregate:
    """Every run's metrics, one row each."""
    input:
        [f"results/runs/{env}/{seed}/{method}/{level}/metrics.json" for env, seed, method, level in RUNS],
    output:
        "results/table.csv",
    log:
        "results/logs/aggregate.log",
    conda:
        "../envs/policypress.yaml"
    shell:
        "policypress aggregate --out {output} {input} > {log} 2>&1"


rule render:
    """Markdown and HTML tables and plots, per env x method x level, seeds aggregated."""
    input:
        "results/table.csv",
    output:
        html="results/leaderboard/index.html",
        markdown="results/leaderboard/leaderboard.md",
    log:
        "results/logs/render.log",
    params:
        provenance=provenance(),
        method_dirs=METHOD_DIR_ARGS,
    conda:
        "../envs/policypress.yaml"
    shell:
        "policypress render --table {input} --out results/leaderboard"
        " --provenance {params.provenance:q} {params.method_dirs} > {log} 2>&1"
