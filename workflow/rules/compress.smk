rule compress:
    """One method on one teacher at one level, under the env's budget and its time limit, then the
    run's measurement (return on the held-out episodes, size, MACs, latency beside the teacher's,
    the embedded cost of its C export), in one process: one interpreter start per run. A method
    that goes over either limit, crashes, dies or returns a bad policy is recorded as invalid in
    run.json and metrics.json; the job succeeds."""
    input:
        info="results/teachers/{env}/{seed}/teacher.json",
        policy="results/teachers/{env}/{seed}/policy",
    output:
        run="results/runs/{env}/{seed}/{method}/{level}/run.json",
        metrics="results/runs/{env}/{seed}/{method}/{level}/metrics.json",
    log:
        "results/logs/runs/{env}/{seed}/{method}/{level}/compress.log",
    benchmark:
        "results/benchmarks/runs/{env}/{seed}/{method}/{level}.tsv"
    params:
        hyperparameters=hyperparameter_overrides,
        method_dirs=METHOD_DIR_ARGS,
        profile=PROFILE,
        config_source=CONFIG_SOURCE,
        budget=env_spec_part("budget"),
        code=method_fingerprint,
        time_limit=time_limit_minutes,
        device=compress_device,
        warmup=config["latency"]["warmup"],
        windows=config["latency"]["windows"],
        window_ms=config["latency"]["window_ms"],
    conda:
        "../envs/policypress.yaml"
    resources:
        runtime=family_resource("compress", 0),
        mem_mb=family_resource("compress", 1),
        gpu=gpus,
    shell:
        "policypress compress --env {wildcards.env} --seed {wildcards.seed} --method {wildcards.method}"
        " --level {wildcards.level} --profile {params.profile} --teacher results/teachers/{wildcards.env}/{wildcards.seed}"
        " --out results/runs/{wildcards.env}/{wildcards.seed}/{wildcards.method}/{wildcards.level}"
        " --hyperparameters {params.hyperparameters:q} --config-source {params.config_source:q} {params.method_dirs}"
        " --time-limit-minutes {params.time_limit} --device {params.device}"
        " --measure {output.metrics} --warmup {params.warmup} --windows {params.windows} --window-ms {params.window_ms}"
        " > {log} 2>&1"
