# Two commands on a fresh machine: `make demo` and `make test`.  Everything they need is installed here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CB := $(VENV)/bin/cloudbutton
STAMP := $(VENV)/.installed
OUT ?= out

export OPENBLAS_NUM_THREADS := 1
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[spark,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(CB) demo --out $(OUT)/demo --size-mb 50
	@echo "timeline: $(OUT)/demo/kpi.timeline.png"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_executors.py

clean:
	rm -rf $(OUT) .pytest_cache
