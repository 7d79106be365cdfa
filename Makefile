# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean venv firmware-cross

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,gui]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m sonobridge demo --force

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(MAKE) -s --no-print-directory -C hardware/firmware test host
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q hil_tests --firmware-host
	$(MAKE) -s --no-print-directory -C hardware/firmware pic0rick emu-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q hil_tests --rp2040-emu pic0rick
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Each benchmark also runs on its own: .venv/bin/python bench/bench_<name>.py (see docs/benchmarks.md).
# Each exits 1 when a target is missed; `-` lets the rest run, and make names every miss.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	-$(PY) bench/bench_decoder.py
	-$(PY) bench/bench_fuzz_decoder.py
	-$(PY) bench/bench_dsp.py
	-$(PY) bench/bench_sim.py
	-$(PY) bench/bench_doppler.py
	-$(PY) bench/bench_stream.py
	-$(PY) bench/bench_record.py
	-$(PY) bench/bench_boards.py
	-$(PY) bench/bench_import.py
	-$(PY) bench/bench_viewer.py --seconds 60 --scenarios 128x4096@31.25,64x2048@60

firmware-cross:
	$(MAKE) -C hardware/firmware cross

clean:
	$(MAKE) -C hardware/firmware clean
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
