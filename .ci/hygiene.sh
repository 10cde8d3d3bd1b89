#!/usr/bin/env bash
# Workflow hygiene, from the repository root:
#   1. snakemake --lint
#   2. snakefmt --check on the Snakefile and the rule files
#   3. the env files of envs/: conda-forge only, every package pinned to one version, the
#      version CI tests (constraints.txt) unless the pin's line says in a comment why not; a
#      `pip:` section (PyPI's torch wheel) pinned `name==version` to exactly the tested version
#   4. a dry-run of the paper config (config/config.yaml), timed: every job of the full grid
#      must be planned within DRYRUN_MAX_SECONDS (default 60)
#   5. the same dry-run with --use-conda, against the stub conda of .ci/conda-stub, so that a
#      rule naming a missing env file fails
#   6. a dry-run with the SLURM profile (`--profile slurm`), which evaluates every profile key
#      and resource (needs snakemake-executor-plugin-slurm, no SLURM)
# Uses $PYTHON (default: python3) with snakemake and snakefmt installed. Exits non-zero at the
# first failing check.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
DRYRUN_MAX_SECONDS=${DRYRUN_MAX_SECONDS:-60}
STUB_PATH="$PWD/.ci/conda-stub:$PATH"
LOG_DIR=$(mktemp -d)
trap 'rm -rf "$LOG_DIR"' EXIT

step() { printf '\n== hygiene: %s\n' "$*"; }
fail() {
  echo "hygiene: FAILED: $*" >&2
  exit 1
}
snakemake() { "$PYTHON" -m snakemake "$@"; }
# logged NAME WHY COMMAND...: run COMMAND with its output in $LOG_DIR/NAME.log, shown on failure
logged() {
  local name=$1 why=$2
  shift 2
  "$@" >"$LOG_DIR/$name.log" 2>&1 || {
    cat "$LOG_DIR/$name.log"
    fail "$why"
  }
}

step "snakemake --lint"
snakemake --lint || fail "snakemake --lint has findings (above)"

step "snakefmt --check"
"$PYTHON" -m snakefmt --check --diff Snakefile workflow/rules ||
  fail "snakefmt would reformat the files above (run: snakefmt Snakefile workflow/rules)"

step "conda env files"
"$PYTHON" - constraints.txt envs/*.yaml <<'PY' || fail "env files (above)"
import re
import sys

import yaml

PIN = re.compile(r"[A-Za-z0-9_.-]+ =\d[\w.]*")  # `name =version`, one version
# conda-forge names whose PyPI package has another name
PYPI_NAMES = {"pytorch": "torch", "matplotlib-base": "matplotlib", "seaborn-base": "seaborn"}
constraints, *env_files = sys.argv[1:]
tested = {}
for line in open(constraints):
    requirement = line.split("#")[0].strip()
    if requirement:
        name, version = requirement.split("==")
        tested[name.lower()] = version
problems = []
for path in env_files:
    env = yaml.safe_load(open(path))
    if env.get("channels") != ["conda-forge", "nodefaults"]:
        problems.append(f"{path}: channels must be [conda-forge, nodefaults], got {env.get('channels')}")
    # a pin that differs from the tested version must say why on its own line
    commented = {line.split("#")[0].strip().removeprefix("-").strip() for line in open(path) if "#" in line}
    pinned = 0
    for dependency in env.get("dependencies", []):
        if isinstance(dependency, dict) and list(dependency) == ["pip"]:
            # a pip section: PyPI names, each pinned `name==version` to the tested version
            for requirement in dependency["pip"]:
                if requirement.startswith("-"):  # an option line (--index-url ...)
                    continue
                name, _, version = requirement.partition("==")
                pinned += 1
                if not version or not PIN.fullmatch(f"{name} ={version}"):
                    problems.append(f"{path}: pip '{requirement}' is not pinned as 'name==version'")
                elif tested.get(name.lower()) != version:
                    problems.append(
                        f"{path}: pip {requirement}, but CI tests "
                        f"{name}=={tested.get(name.lower(), '(nothing)')} ({constraints})"
                    )
            continue
        if not isinstance(dependency, str) or not PIN.fullmatch(dependency):
            problems.append(f"{path}: '{dependency}' is not pinned as 'name =version'")
            continue
        pinned += 1
        name, version = dependency.split(" =")
        pypi = PYPI_NAMES.get(name, name)
        if pypi in tested and version != tested[pypi] and dependency not in commented:
            problems.append(
                f"{path}: {dependency}, but CI tests {pypi}=={tested[pypi]} ({constraints}): "
                "pin that, or say on the line, in a comment, why not"
            )
    print(f"{path}: {pinned} pinned packages")
if problems:
    sys.exit("\n".join(problems))
PY

step "dry-run of the paper config"
started=$EPOCHREALTIME
logged paper "the paper config does not plan" snakemake --dry-run --quiet rules
elapsed_ms=$(((${EPOCHREALTIME/./} - ${started/./}) / 1000))
jobs=$(awk '$1 == "total" {print $2; exit}' "$LOG_DIR/paper.log")
[ -n "$jobs" ] || fail "no job count in the dry-run output"
printf 'paper config: %s jobs planned in %d.%01d s\n' "$jobs" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))
[ "$elapsed_ms" -le $((DRYRUN_MAX_SECONDS * 1000)) ] ||
  fail "planning took ${elapsed_ms} ms, more than ${DRYRUN_MAX_SECONDS} s"

step "dry-run with --use-conda (stub conda: every env file must exist)"
PATH=$STUB_PATH logged conda "the --use-conda dry-run failed" \
  snakemake --dry-run --quiet rules --use-conda
for env in envs/*.yaml; do
  grep -q "Conda environment $env will be created" "$LOG_DIR/conda.log" ||
    fail "no rule uses $env, or Snakemake did not plan it"
done
grep "Conda environment" "$LOG_DIR/conda.log"

step "dry-run with the SLURM profile"
PATH=$STUB_PATH logged slurm "the dry-run with --profile slurm failed" \
  snakemake --dry-run --quiet rules --profile slurm
awk '$1 == "total" {print "SLURM profile: " $2 " jobs planned"; exit}' "$LOG_DIR/slurm.log"

printf '\nhygiene: all checks passed\n'
