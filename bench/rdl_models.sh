#!/usr/bin/env bash
# Train the rDL SIM models behind the shipped "tirf-sim-3x3" and bench/rdl_compare.py, on the simulator:
# three independent DFCAN + denoiser pairs (seeds 0, 1, 2; seed 0 is shipped) and the CARE baseline.
# Two jobs at a time, one thread each: the simulation is single-threaded numpy, so two one-thread jobs
# use two cores better than one two-thread job. About 40 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
MICROSR=${MICROSR:-.venv/bin/microsr}
# RUNS: where the runs go; ITERATIONS: each network's iterations (default: the example configs' 1000); SHIP=0
# leaves the shipped weights alone (a longer ensemble for bench/rdl_compare.py only). A killed run resumes
# from its checkpoints when started again with the same settings.
RUNS=${RUNS:-runs/rdl_tirf}
ITERATIONS=${ITERATIONS:-}
SHIP=${SHIP:-1}
mkdir -p "$RUNS/configs"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

config() {  # config TASK SEED -> path of the example config with its seeds and folders moved to SEED
  local task=$1 seed=$2 out="$RUNS/configs/${1}_seed$2.yaml"
  sed -e "s/^seed: 0/seed: $seed/" -e "s/^  seed: 0/  seed: $seed/" \
      -e "s#runs/rdl_tirf/\([a-z]*\)\$#$RUNS/\1_seed$seed#" \
      -e "s#sr_model: runs/rdl_tirf/sr/model.pt#sr_model: $RUNS/sr_seed$seed/model.pt#" \
      -e "s#^iterations: \\(.*\\)#iterations: ${ITERATIONS:-\\1}#" \
      "examples/rdl_${task}_tirf.yaml" > "$out"
  echo "$out"
}
train() { "$MICROSR" rdl train "$(config "$1" "$2")" > "$RUNS/$1_seed$2.log" 2>&1; }

train sr 0 & train sr 1 & wait
train denoise 0 & train denoise 1 & wait
train sr 2 & train care 0 & wait
train denoise 2

# One model folder per seed (what RDLSIM.from_pretrained and --ensemble take); seed 0 is the shipped one.
for seed in 0 1 2; do
  mkdir -p "$RUNS/model_seed$seed"
  cp "$RUNS/sr_seed$seed/model.pt" "$RUNS/model_seed$seed/sr.pt"
  cp "$RUNS/denoise_seed$seed/model.pt" "$RUNS/model_seed$seed/denoiser.pt"
done
if [ "$SHIP" = 1 ]; then
  mkdir -p src/microsr/weights/tirf-sim-3x3
  cp "$RUNS/model_seed0/sr.pt" "$RUNS/model_seed0/denoiser.pt" src/microsr/weights/tirf-sim-3x3/
fi
