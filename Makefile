# Two commands for a newcomer on a fresh machine (each sets itself up first):
#   make demo   train and evaluate the offline default configuration (no internet needed)
#   make test   run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The engine, run and tune tests again as on an AVX2-only CPU (oneDNN and ATen capped), so that an
# AVX2-only regression is caught on an AVX-512 machine too: CI runs on whichever CPU it gets.
AVX2_ENV   := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
AVX2_TESTS := tests/test_engine_step.py tests/test_engine_trainer.py tests/test_engine_checkpoint.py \
              tests/test_engine_hardware.py tests/test_engine_guards.py tests/test_engine_tune.py \
              tests/test_run.py tests/test_cli_run.py tests/test_sweep_tune.py

# The suite runs on TEST_WORKERS pytest-xdist processes of one thread each (OMP_NUM_THREADS=1): on 2 cores about
# half the time of one process with two threads (OpenMP's waiting threads and the tests' Python overhead).
TEST_WORKERS ?= 2
TEST_ENV     := OMP_NUM_THREADS=1

.PHONY: demo test test-avx2 test-fast bench clean

# A CPU-only machine need not download 3-4 GB of CUDA libraries: install torch from PyTorch's CPU
# index first, e.g. `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu` (or export it).
TORCH_INDEX ?=

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rftbench run

test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -n $(TEST_WORKERS)
	$(MAKE) --no-print-directory test-avx2

test-avx2: $(STAMP)
	$(TEST_ENV) $(AVX2_ENV) $(BIN)/python -m pytest -n $(TEST_WORKERS) $(AVX2_TESTS) -p no:cacheprovider

test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-enable

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
