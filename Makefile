# Both targets create .venv on first use and reuse it; the stamp reinstalls only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve-env convert-env run test lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@# onnx2torch (bakeoff convert, Keras -> PyTorch) declares torchvision, whose PyPI wheel pulls another
	@# torch; bakeoff loads it without torchvision, so it goes in without its dependencies.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'onnx2torch==1.5.15'
	@# TF Serving's protos for the serve stage's gRPC; with its dependencies it would pull the full
	@# tensorflow wheel (572 MB) beside tensorflow-cpu.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'tensorflow-serving-api==2.21.*'
	@touch $(STAMP)

install: $(STAMP)

# Triton's tritonserver (nvidia-pytriton's wheel) needs numpy<2: it gets its own virtualenv, in
# ~/.cache/bakeoff/triton-env or where BAKEOFF_TRITON_ENV points. Made once (about 90 s), rebuilt when its
# pinned requirements change, a no-op otherwise.
serve-env: $(STAMP)
	$(BIN)/python -m bakeoff.stages.serve.servers.triton_env

# onnx2tf pins old numpy, protobuf and TensorFlow: `bakeoff convert` runs it from a virtualenv of its own
# (~/.cache/bakeoff/onnx2tf-env, or BAKEOFF_CONVERTER_ENV), as `bakeoff convert --setup` makes it. Made
# once (about 3 minutes here), a no-op after; tests that convert take it from there.
convert-env: $(STAMP)
	$(BIN)/python -m bakeoff.stages.export.converters.onnx2tf_env

run: $(STAMP)
	$(BIN)/bakeoff run

# Two workers halve the suite's wall time (most tests wait on one framework process at a time); the few
# tests that judge the machine's own load (marked `serial`, kept in tests/measure so collecting them is
# quick) run alone afterwards.
test: $(STAMP) serve-env convert-env
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not serial" --durations=20
	$(BIN)/python -m pytest -m serial tests/measure

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) bakeoff-runs .pytest_cache .mypy_cache .ruff_cache
