rule measure:
    """Return on the held-out episodes, size, MACs and latency (beside the teacher's) of one run."""
    input:
        run="results/runs/{env}/{seed}/{method}/{level}/run.json",
        info="results/teachers/{env}/{seed}/teacher.json",
        onnx="results/teachers/{env}/{seed}/policy.onnx",
    output:
        metrics="results/runs/{env}/{seed}/{method}/{level}/metrics.json",
    log:
        "results/logs/runs/{env}/{seed}/{method}/{level}/measure.log",
    params:
        warmup=config["latency"]["warmup"],
        repeats=config["latency"]["repeats"],
    conda:
        "../envs/policypress.yaml"
    resources:
        runtime=60,
        mem_mb=2000,
    shell:
        "policypress measure --run results/runs/{wildcards.env}/{wildcards.seed}/{wildcards.method}/{wildcards.level}"
        " --teacher results/teachers/{wildcards.env}/{wildcards.seed} --env {wildcards.env}"
        " --warmup {params.warmup} --repeats {params.repeats} --out {output.metrics} > {log} 2>&1"
