# Seconds of work on files every job wrote: on a cluster they run where Snakemake runs.
localrules:
    aggregate,
    render,


rule aggregate:
    """Every run's metrics, one row each."""
    input:
        [f"results/runs/{env}/{seed}/{method}/{level}/metrics.json" for env, seed, method, level in RUNS],
    output:
        table="results/table.csv",
        runs="results/runs.json",
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../envs/policypress.yaml"
    shell:
        "policypress aggregate --out {output.table} --runs-json {output.runs} {input} > {log} 2>&1"


rule render:
    """The static site (overview, env and method pages), paper tables and exports with provenance."""
    input:
        table="results/table.csv",
        runs="results/runs.json",
        teachers=[f"results/teachers/{env}/{seed}/teacher.json" for env in config["envs"] for seed in config["seeds"]],
        claims=CLAIMS,
    output:
        html="results/leaderboard/index.html",
        markdown="results/leaderboard/leaderboard.md",
        latex="results/leaderboard/tables.tex",
        runs="results/leaderboard/runs.json",
    log:
        "results/logs/render.log",
    benchmark:
        "results/benchmarks/render.tsv"
    params:
        provenance=provenance(),
        method_dirs=METHOD_DIR_ARGS,
        baselines=" ".join(config["baselines"]),
    conda:
        "../envs/policypress.yaml"
    shell:
        "policypress render --table {input.table} --runs-json {input.runs} --out results/leaderboard"
        " --provenance {params.provenance:q} --baselines {params.baselines} {params.method_dirs}"
        " --teachers {input.teachers} --claims {input.claims} > {log} 2>&1"
