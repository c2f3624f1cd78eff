# Two commands: `make demo` and `make test`. Each sets up .venv on first use.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of torch 2.13.0 lies in /opt/wheels on our machines; pinning it first keeps pip
# from ever resolving a bare `torch` to a multi-GB CUDA build.
WHEELS := $(wildcard /opt/wheels)
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/microsr demo demo_out

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/sim_reconstruct.py
	$(PY) bench/metrics.py
	$(PY) bench/sfsrm_inference.py --sizes 256 512 --paper-sizes 256

clean:
	rm -rf $(VENV) demo_out bench_out .pytest_cache
