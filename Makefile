# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is
# missing, install the pinned set (constraints.txt) and build Horovod against the installed
# MXNet; a second run finds the stamp file and starts at once.
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
HOROVOD_STAMP := $(VENV)/.horovod
DATA ?= data/synthetic
# Horovod 0.28.1 builds against the installed MXNet only this way: MXNet first, pip's build
# isolation off (it would build against a fresh MXNet-less environment), TensorFlow, PyTorch and
# MPI off, Gloo on (the CPU transport `horovodrun --gloo` uses).
HOROVOD_ENV := HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
	HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1

.PHONY: install demo test bench clean-venv

install: $(STAMP) $(HOROVOD_STAMP)

$(VENV)/bin/python:
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PIP) install -q "pip<25" wheel "setuptools<70"

$(STAMP): $(VENV)/bin/python setup.py constraints.txt
	$(PIP) install -q -c constraints.txt -e ".[test,export,tensorboard]"
	$(PY) -c "import mxnet, numpy, cv2; assert numpy.__version__ == '1.23.5', numpy.__version__"
	touch $@

$(HOROVOD_STAMP): $(STAMP)
	$(HOROVOD_ENV) $(PIP) install -q -c constraints.txt --no-build-isolation horovod==0.28.1
	$(PY) -c "import horovod.mxnet as hvd; assert hvd.gloo_built(), 'Horovod built without Gloo'"
	touch $@

demo: install
	$(PY) -m recognition.demo --data $(DATA)

test: install
	$(PY) -m pytest -q tests

bench: install
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
