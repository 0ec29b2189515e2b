# PolicyPress: teachers -> compression under enforced budgets -> metrics -> leaderboard.
#   snakemake --cores 8                                  full reproduction (config/config.yaml)
#   snakemake --cores 2 --configfile config/quick.yaml   a real leaderboard on a laptop
#   snakemake --cores 2 --configfile config/smoke.yaml   the whole DAG in minutes (CI)
from snakemake.utils import min_version

min_version("9.0")


# The default config only when none is given: Snakemake would otherwise merge a profile's config into
# the default's, and a profile could not leave out a method or an env the default lists.
if not workflow.configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/teachers.smk"
include: "workflow/rules/compress.smk"
include: "workflow/rules/leaderboard.smk"


rule all:
    input:
        "results/leaderboard/index.html",
    default_target: True
