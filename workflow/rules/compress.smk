rule compress:
    """One method on one teacher at one level, under the env's budget and its time limit. A method
    that goes over either, crashes, dies or returns a bad policy is recorded as invalid in
    run.json; the job succeeds."""
    input:
        info="results/teachers/{env}/{seed}/teacher.json",
        policy="results/teachers/{env}/{seed}/policy",
    output:
        run="results/runs/{env}/{seed}/{method}/{level}/run.json",
    log:
        "results/logs/runs/{env}/{seed}/{method}/{level}/compress.log",
    params:
        hyperparameters=hyperparameter_overrides,
        method_dirs=METHOD_DIR_ARGS,
        profile=PROFILE,
        config_source=CONFIG_SOURCE,
        budget=env_spec_part("budget"),
        code=method_fingerprint,
        time_limit=time_limit_minutes,
    conda:
        "../envs/policypress.yaml"
    resources:
        runtime=family_resource("compress", 0),
        mem_mb=family_resource("compress", 1),
    shell:
        "policypress compress --env {wildcards.env} --seed {wildcards.seed} --method {wildcards.method}"
        " --level {wildcards.level} --profile {params.profile} --teacher results/teachers/{wildcards.env}/{wildcards.seed}"
        " --out results/runs/{wildcards.env}/{wildcards.seed}/{wildcards.method}/{wildcards.level}"
        " --hyperparameters {params.hyperparameters:q} --config-source {params.config_source:q} {params.method_dirs}"
        " --time-limit-minutes {params.time_limit}"
        " > {log} 2>&1"
