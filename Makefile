# Two commands on a fresh machine: `make demo` and `make test`.  Everything they need is installed here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CB := $(VENV)/bin/cloudbutton
STAMP := $(VENV)/.installed
OUT ?= out
# The browser tests of the HTML reports drive Debian's Chromium (never a downloaded browser).
CHROMIUM := /usr/bin/chromium

export OPENBLAS_NUM_THREADS := 1
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))

.PHONY: install demo test bench clean

install: $(STAMP)

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# the genomics caller's compiled loops (Cython) are built by pip with the system's C compiler
$(STAMP): pyproject.toml setup.py pipelines/genomics/kernels.pyx
	command -v cc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[spark,test]'
	touch $(STAMP)

SAMPLES := data/samples
MET := $(SAMPLES)/metabolomics/generated
GEN := $(SAMPLES)/genomics/generated
GEO := $(SAMPLES)/geospatial/tiles

# Sample inputs, made by the project's own generators (deterministic by seed) when missing.
$(MET)/seed0.imzML: | $(STAMP)
	$(PY) $(SAMPLES)/metabolomics/generate.py --seeds 0
$(GEN)/30x/sim.bam: | $(STAMP)
	$(PY) $(SAMPLES)/genomics/make_samples.py
$(GEO)/.done: | $(STAMP)
	$(PY) $(SAMPLES)/geospatial/generate.py $(GEO) && touch $@

# All three pipelines on the samples with the threads executor; each prints its KPI summary and
# leaves report.html beside its kpi.json.
demo: $(STAMP) $(MET)/seed0.imzML $(GEN)/30x/sim.bam $(GEO)/.done
	$(CB) metabolomics annotate $(MET)/seed0.imzML --db $(MET)/seed0_db.csv --out $(OUT)/metabolomics
	$(CB) genomics call $(GEN)/30x/sim.bam --reference $(GEN)/30x/sim.fa --out $(OUT)/genomics/calls.vcf.gz
	$(CB) geospatial dem $(GEO) --out $(OUT)/geospatial/dem.tif --hillshade $(OUT)/geospatial/hillshade.png
	@echo "Reports (open in a browser): $(OUT)/metabolomics/report.html $(OUT)/genomics/report.html" \
	  "$(OUT)/geospatial/report.html"

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -q --durations=15

# Every benchmark; results (markdown + plots, with the machine described) land in benchmarks/results/.
bench: $(STAMP)
	$(PY) benchmarks/bench_executors.py
	$(PY) benchmarks/bench_metabolomics.py
	$(PY) benchmarks/bench_genomics.py
	$(PY) benchmarks/bench_geospatial.py
	$(PY) benchmarks/bench_shuffle.py
	for p in metabolomics genomics geospatial; do \
	  $(CB) bench $$p --repeat 3 --out $(OUT)/bench-$$p && mkdir -p benchmarks/results/bench-$$p && \
	  cp $(OUT)/bench-$$p/bench.md $(OUT)/bench-$$p/bench.png $(OUT)/bench-$$p/projection.png benchmarks/results/bench-$$p/ \
	  || exit 1; \
	done

clean:
	rm -rf $(OUT) .pytest_cache
