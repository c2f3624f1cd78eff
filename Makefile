# Two commands: `make demo` and `make test`. Each sets up .venv on first use.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of torch 2.13.0 lies in /opt/wheels on our machines; pinning it first keeps pip
# from ever resolving a bare `torch` to a multi-GB CUDA build.
WHEELS := $(wildcard /opt/wheels)
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: setup system-deps demo test bench bench-env shipped-model paper-models rdl-models selfsup-models clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev,bioimageio,napari]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/microsr demo demo_out

# What napari's tests need from Debian: a virtual display and the xcb/GL libraries Qt loads.
XVFB_PACKAGES = xvfb xauth libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
	libxcb-render-util0 libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libgl1 \
	libegl1 libfontconfig1 libdbus-1-3

system-deps:
	@command -v xvfb-run >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -qq --no-install-recommends $(XVFB_PACKAGES) >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $(XVFB_PACKAGES); } || \
		echo "WARNING: could not install Xvfb (apt needs root or sudo): the napari tests will not run"; }

# The suite, then the napari plugin's tests on a virtual display (the rest never needs one).
test: $(STAMP) system-deps
	$(PY) -m pytest -q --ignore=tests/napari
	@if command -v xvfb-run >/dev/null 2>&1; then \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest -q -p no:cacheprovider tests/napari; \
	else echo "WARNING: the napari tests were NOT run: no xvfb-run (make system-deps installs it with apt)"; fi

# The peers that bench/peers.py runs beside microsr (bench/peers-requirements.txt) get an environment of their own:
# what they pull never reaches .venv, so the tests cannot come to depend on it. The project goes in first with torch
# pinned to the CPU build, as in setup, and the requirements pin it again so that no peer can swap it.
BENCH_VENV  := .venv-bench
BENCH_PY    := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_PIP   := $(BENCH_PY) -m pip install --quiet --disable-pip-version-check $(if $(WHEELS),--find-links $(WHEELS),)

bench-env: $(BENCH_STAMP)

$(BENCH_STAMP): pyproject.toml bench/peers-requirements.txt
	test -x $(BENCH_PY) || python3 -m venv $(BENCH_VENV)
	$(BENCH_PIP) torch==2.13.0
	$(BENCH_PIP) -e . -r bench/peers-requirements.txt
	touch $(BENCH_STAMP)

bench: $(STAMP) bench-env
	$(PY) bench/sim_reconstruct.py
	$(PY) bench/metrics.py --evaluate 4096
	$(PY) bench/sfsrm_inference.py --sizes 256 512 --paper-sizes 256
	$(BENCH_PY) bench/peers.py

# Retrain the shipped SFSRM model "filaments-x4" from the simulator (~70 min on 2 CPU cores, two jobs at a
# time): an SEN and three SRNs (seeds 1-3: the ensemble whose disagreement map every prediction carries) on
# realistic widefield images (four specimen classes, haze, PSF 200-350 nm, sCMOS defects), then the held-out
# checks on sparse filaments and on hazy ER networks. The weights land in the package; commit them with
# MODEL_CARD.md updated.
WEIGHTS := src/microsr/weights/filaments-x4
shipped-model: $(STAMP)
	mkdir -p runs/configs $(WEIGHTS)
	for seed in 2 3; do sed -e "s/^  seed: 1/  seed: $$seed/" -e "s/seed1$$/seed$$seed/" \
		examples/sfsrm_srn_realistic_x4.yaml > runs/configs/srn_realistic_seed$$seed.yaml; done
	OMP_NUM_THREADS=1 $(VENV)/bin/microsr sfsrm train examples/sfsrm_sen_realistic.yaml & \
		OMP_NUM_THREADS=1 $(VENV)/bin/microsr sfsrm train examples/sfsrm_srn_realistic_x4.yaml & wait
	OMP_NUM_THREADS=1 $(VENV)/bin/microsr sfsrm train runs/configs/srn_realistic_seed2.yaml & \
		OMP_NUM_THREADS=1 $(VENV)/bin/microsr sfsrm train runs/configs/srn_realistic_seed3.yaml & wait
	cp runs/sen_realistic/model.pt $(WEIGHTS)/sen.pt
	cp runs/srn_realistic_x4_seed1/model.pt $(WEIGHTS)/srn.pt
	cp runs/srn_realistic_x4_seed2/model.pt $(WEIGHTS)/srn_1.pt
	cp runs/srn_realistic_x4_seed3/model.pt $(WEIGHTS)/srn_2.pt
	$(PY) bench/sfsrm_eval.py --model filaments-x4 --snr 5 10 15 20 --images 8
	$(PY) bench/sfsrm_eval.py --model filaments-x4 --specimen er --snr 5 10 20 --images 6

# The x10 models behind bench/sfsrm_paper.py (paper 003's dot-pair and line-pair tables), then the tables.
paper-models: $(STAMP)
	$(VENV)/bin/microsr sfsrm train examples/sfsrm_srn_dots_x10.yaml
	$(VENV)/bin/microsr sfsrm train examples/sfsrm_srn_lines_x10.yaml
	$(PY) bench/sfsrm_paper.py --dot-model runs/srn_dots_x10/model.pt --line-model runs/srn_lines_x10/model.pt

# The shipped rDL SIM model "tirf-sim-3x3" (seed 0 of three independently trained DFCAN + denoiser pairs)
# and the CARE baseline, on the simulator (~40 min on 2 CPU cores), then the comparison, the uncertainty table
# and the table on acquisitions like real ones (measured OTF, camera and laser defects).
rdl-models: $(STAMP)
	bash bench/rdl_models.sh
	$(PY) bench/rdl_real.py --model src/microsr/weights/tirf-sim-3x3
	$(PY) bench/rdl_compare.py --model src/microsr/weights/tirf-sim-3x3 --care runs/rdl_tirf/care_seed0/model.pt \
		--ensemble runs/rdl_tirf/model_seed0 runs/rdl_tirf/model_seed1 runs/rdl_tirf/model_seed2 \
		--figure bench_out/rdl_uncertainty.png

# TiS-rDL with and without GAR (4 temporal down-sampling factors), a supervised reference, SiS-rDL with and
# without GAR at 3 axial steps, the headline pair again at the cosine learning rate, on simulated LLSM stacks
# (~4.5 h on 2 CPU cores), then the comparison tables and figure. The shipped "llsm-vesicles-tis" is
# runs/selfsup_bench/tis_x1_gar0.5_cos/model.pt.
selfsup-models: $(STAMP)
	$(PY) bench/selfsup_compare.py --train --iterations 2400 --sis-iterations 1200 --figure bench_out/selfsup.png \
		--json bench_out/selfsup.json

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo_out bench_out .pytest_cache
