# Every target sets itself up: a fresh machine needs only python3 (>= 3.10) and pip.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch first, capped below 2.14, so that pip never pulls the CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
export TINYSNN_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install test test-fast bench lint demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,events,mcu]"
	# the NIR consumer of the export tests (optional; no deps: norse asks for torchvision)
	$(PY) -m pip install -q --no-deps "norse==1.1.0" "nirtorch==2.6"
	# the attack library of the robustness evaluation (no deps: it pins requests ~= 2.25
	# and asks for torchvision, neither of which it imports for FGSM and PGD)
	$(PY) -m pip install -q --no-deps "torchattacks==3.5.1"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# Standard throughput set; results are recorded in docs/benchmarks.md. Training rates at one
# thread (what each explore worker uses on 2 cores), inference at 2 threads.
BENCH := $(VENV)/bin/tinysnn bench
# Late in a pass (where a full pass spends its time: boosted re-presentations, high
# thresholds): rows from networks trained on MNIST, made once under $(LATE) (about four
# minutes): tinySNN-400 on 20,000 images, the baseline on 10,000.
LATE ?= runs/bench-late
$(LATE)/tinysnn/model.pt: | install
	$(VENV)/bin/tinysnn train --dataset mnist --neurons 400 --train-samples 20000 --test-samples 1000 --threads 2 --out $(LATE)/tinysnn
$(LATE)/baseline/model.pt: | install
	$(VENV)/bin/tinysnn train --model baseline --dataset mnist --neurons 400 --train-samples 10000 --test-samples 1000 --threads 2 --out $(LATE)/baseline

bench: install $(LATE)/tinysnn/model.pt $(LATE)/baseline/model.pt
	$(BENCH) --threads 2 --train-images 300 --infer-images 10000
	$(BENCH) --threads 1 --train-images 300 --infer-images 10000
	$(BENCH) --threads 1 --train-images 300 --infer-images 10000 --scheme itq --rounding nearest --weight-bits 8
	$(BENCH) --threads 1 --train-images 200 --infer-images 5000 --scheme itq --rounding stochastic --weight-bits 8 --vmem-bits 16 --vth-bits 16
	$(BENCH) --threads 1 --train-images 100 --infer-images 1000 --model baseline
	$(BENCH) --threads 2 --train-images 100 --infer-images 10000 --scheme itq --rounding nearest --weight-bits 8 --design-points 8
	# an explore worker's ITQ design batch: 9 points (W 16-4 bits) on one thread
	$(BENCH) --threads 1 --train-images 60 --infer-images 1000 --scheme itq --rounding nearest --weight-bits 8 --design-points 9
	# late in a pass: tinySNN FP32, the baseline, the ITQ design batch
	$(BENCH) --threads 1 --train-images 300 --infer-images 2000 --checkpoint $(LATE)/tinysnn/model.pt
	$(BENCH) --threads 1 --train-images 100 --infer-images 1000 --checkpoint $(LATE)/baseline/model.pt
	$(BENCH) --threads 1 --train-images 60 --infer-images 1000 --scheme itq --rounding nearest --weight-bits 8 --design-points 9 --checkpoint $(LATE)/tinysnn/model.pt
	# the gradient-trained family (core/diet.py): 784-400-10 at T = 4, one MNIST epoch, 2 threads
	$(PY) benchmarks/diet_mnist.py --epochs 1 --threads 2 --ptq 8,16,16

lint: install
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info

# The README's first command: offline, on the embedded digits set. Explores the smoke
# space (resuming if runs/demo/tinysnn.db exists), selects at mu 0.5, writes the report.
DEMO ?= runs/demo
demo: install
	mkdir -p $(DEMO)
	$(VENV)/bin/tinysnn explore smoke --storage sqlite:///$(DEMO)/tinysnn.db
	$(VENV)/bin/tinysnn select --storage sqlite:///$(DEMO)/tinysnn.db --mu 0.5 --top 5
	$(VENV)/bin/tinysnn report --storage sqlite:///$(DEMO)/tinysnn.db --out $(DEMO)/report
	@echo "report: $(abspath $(DEMO))/report/index.html"
