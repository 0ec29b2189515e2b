rule measure:
    """Return on the held-out episodes, size, MACs, latency (beside the teacher's) and the embedded
    cost of the C export (instructions, Cortex-M4 flash and RAM) of one run."""
    input:
        run="results/runs/{env}/{seed}/{method}/{level}/run.json",
        info="results/teachers/{env}/{seed}/teacher.json",
        teacher="results/teachers/{env}/{seed}/policy",
    output:
        metrics="results/runs/{env}/{seed}/{method}/{level}/metrics.json",
    log:
        "results/logs/runs/{env}/{seed}/{method}/{level}/measure.log",
    params:
        warmup=config["latency"]["warmup"],
        windows=config["latency"]["windows"],
        window_ms=config["latency"]["window_ms"],
    conda:
        "../envs/policypress.yaml"
    resources:
        runtime=60,
        mem_mb=2000,
    shell:
        "policypress measure --run results/runs/{wildcards.env}/{wildcards.seed}/{wildcards.method}/{wildcards.level}"
        " --teacher results/teachers/{wildcards.env}/{wildcards.seed} --env {wildcards.env}"
        " --warmup {params.warmup} --windows {params.windows} --window-ms {params.window_ms}"
        " --out {output.metrics} > {log} 2>&1"
