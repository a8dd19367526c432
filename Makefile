# pacelight — the two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PACELIGHT := $(VENV)/bin/pacelight
DEMO_OUT ?= demo-out

.PHONY: all setup demo test test-fast bench lint model pace-model firmware-test chaos clean help

help:
	@echo "make demo           install what is needed, then run a simulated shift end to end"
	@echo "make test           install what is needed, then run the whole test suite"
	@echo "make bench          accuracy and speed benchmarks; results go to docs/benchmarks.md"
	@echo "make lint           ruff, plus the firmware type check and mpy-cross compile"
	@echo "make model          retrain and re-quantize the shipped tone model (needs the train extra)"
	@echo "make firmware-test  the LED controller firmware under the MicroPython unix port"
	@echo "make chaos          the long zero-loss MQTT chaos run"

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PACELIGHT) demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: setup
	$(PY) -m benchmarks.run_all

lint: setup
	$(VENV)/bin/ruff check firmware host models tests benchmarks
	$(PY) -m pacelight.ledfw_check

# TensorFlow lives in its own venv (.venv-train) so its numpy pins never touch the runtime .venv.
TRAIN_VENV := .venv-train
model:
	@test -x $(TRAIN_VENV)/bin/python || python3 -m venv $(TRAIN_VENV)
	@mkdir -p .stamps; key=$$(sha256sum pyproject.toml | cut -c1-16); \
	if [ "$$(cat .stamps/venv-train 2>/dev/null)" != "$$key" ]; then \
	  $(TRAIN_VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel && \
	  $(TRAIN_VENV)/bin/python -m pip install -q -e '.[train]' && echo "$$key" > .stamps/venv-train; fi
	TF_CPP_MIN_LOG_LEVEL=2 $(TRAIN_VENV)/bin/python -m pacelight_train.build --arch cnn
	TF_CPP_MIN_LOG_LEVEL=2 $(TRAIN_VENV)/bin/python -m pacelight_train.build --arch dscnn --variants emodb

# The pace estimator's learned models: nucleus density and nucleus-event classifier (numpy/scipy; EmoDB train speakers only).
pace-model: setup
	$(PY) -m pacelight_train.syllables
	$(PY) -m pacelight_train.syllable_events

firmware-test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/test_ledfw*.py

chaos: setup
	PACELIGHT_CHAOS_SUMMARIES=1000 PACELIGHT_CHAOS_DEVICES=20 $(PY) -m pytest -q -s tests/test_chaos.py

clean:
	rm -rf $(VENV) .stamps $(DEMO_OUT) .pytest_cache
