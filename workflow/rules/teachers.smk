rule train_teacher:
    """Train the SB3 teacher of one env and seed (or import it, when the config names its files),
    convert it to a Policy, evaluate it."""
    input:
        imported_files,
    output:
        model="results/teachers/{env}/{seed}/model.zip",
        policy=directory("results/teachers/{env}/{seed}/policy"),
        onnx="results/teachers/{env}/{seed}/policy.onnx",
        info="results/teachers/{env}/{seed}/teacher.json",
    log:
        "results/logs/teachers/{env}/{seed}.log",
    benchmark:
        "results/benchmarks/teachers/{env}/{seed}.tsv"
    params:
        profile=PROFILE,
        command=teacher_command,
        spec=env_spec_part("gym_id", "env_kwargs", "wrappers", "teacher", "evaluation"),
    conda:
        "../envs/policypress.yaml"
    resources:
        runtime=family_resource("train_teacher", 0),
        mem_mb=family_resource("train_teacher", 1),
        gpu=gpus,
    shell:
        "policypress {params.command} --env {wildcards.env} --seed {wildcards.seed} --profile {params.profile}"
        " --out results/teachers/{wildcards.env}/{wildcards.seed} > {log} 2>&1"
