# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is
# missing, install the pinned set (constraints.txt) and build Horovod against the installed
# MXNet; a second run finds the stamp file and starts at once.
#
# GPU machines (CUDA 11.2 toolkit and NCCL 2 installed; never run in this project yet):
#   make install GPU=cu112   mxnet-cu112==1.9.1 instead of mxnet==1.9.1, Horovod built with
#                            NCCL (HOROVOD_GPU_OPERATIONS=NCCL; Gloo stays on for horovodrun)
#   make gpu-check           50 steps float32 + float16 on 1 and all local GPUs: loss, img/s,
#                            memory beside tools/plan.py's prediction (benchmarks/gpu_smoke.py)
# The variant is remembered in $(VENV)/.mxnet-variant: a later plain `make`, `make test` or
# `make demo` keeps it. `make install GPU=cpu` (or GPU=cu112 on a CPU venv) switches: it
# uninstalls MXNet and Horovod first, then installs the other MXNet and rebuilds Horovod.
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
HOROVOD_STAMP := $(VENV)/.horovod
VARIANT_FILE := $(VENV)/.mxnet-variant
DATA ?= data/synthetic

# The MXNet in the venv: the variant file, else (a venv made before variants existed) what is
# installed, else nothing yet. GPU= on the command line picks one; without it the venv keeps its
# own, and a fresh venv gets the CPU build.
INSTALLED_VARIANT := $(or $(shell cat $(VARIANT_FILE) 2>/dev/null),$(if $(wildcard \
	$(VENV)/lib/python*/site-packages/mxnet_cu112-*.dist-info),cu112,$(if $(wildcard \
	$(STAMP)),cpu)))
GPU ?= $(or $(INSTALLED_VARIANT),cpu)
ifeq ($(GPU),cpu)
MXNET_DIST := mxnet
HOROVOD_OPS := gloo
else ifeq ($(GPU),cu112)
MXNET_DIST := mxnet-cu112
HOROVOD_OPS := gloo nccl
else
$(error GPU=$(GPU) ($(origin GPU)) is not a known MXNet build; use GPU=cu112 or GPU=cpu)
endif

# Horovod 0.28.1 builds against the installed MXNet only this way: MXNet first, pip's build
# isolation off (it would build against a fresh MXNet-less environment), TensorFlow, PyTorch and
# MPI off, Gloo on (the CPU transport `horovodrun --gloo` uses).
HOROVOD_ENV := HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
	HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1
HOROVOD_PIP :=
ifeq ($(GPU),cu112)
# NCCL for GPU all-reduce. --no-cache-dir: pip's wheel cache would hand back a CPU build.
HOROVOD_ENV += HOROVOD_GPU_OPERATIONS=NCCL
HOROVOD_PIP := --no-cache-dir
endif

# Switching variants: both stamps are out of date, and the stamps, the old MXNet and Horovod go
# first (the two MXNet wheels install the same `mxnet` package; Horovod must be rebuilt against
# the new one; a switch that fails half way leaves no stamp claiming a finished install).
ifneq ($(INSTALLED_VARIANT),$(GPU))
$(STAMP) $(HOROVOD_STAMP): FORCE
endif
SWITCH := $(filter-out $(GPU),$(INSTALLED_VARIANT))

.PHONY: install demo test bench gpu-check clean-venv FORCE

install: $(STAMP) $(HOROVOD_STAMP)

$(VENV)/bin/python:
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PIP) install -q "pip<25" wheel "setuptools<70"

$(STAMP): $(VENV)/bin/python setup.py constraints.txt
	$(if $(SWITCH),rm -f $(STAMP) $(HOROVOD_STAMP) $(VARIANT_FILE))
	$(if $(SWITCH),$(PIP) uninstall -y -q mxnet mxnet-cu112 horovod)
	$(PIP) install -q -c constraints.txt -e ".[test,export,tensorboard,$(GPU)]"
	$(PY) -c "import mxnet, numpy, cv2; assert numpy.__version__ == '1.23.5', numpy.__version__"
	$(PY) -c "from importlib.metadata import version; assert version('$(MXNET_DIST)') == '1.9.1'"
	echo $(GPU) > $(VARIANT_FILE)
	touch $@

$(HOROVOD_STAMP): $(STAMP)
	$(HOROVOD_ENV) $(PIP) install -q -c constraints.txt --no-build-isolation $(HOROVOD_PIP) horovod==0.28.1
	$(PY) -c "import horovod.mxnet as hvd$(foreach op,$(HOROVOD_OPS),; assert hvd.$(op)_built(), 'Horovod built without $(op)')"
	touch $@

demo: install
	$(PY) -m recognition.commands.demo --data $(DATA)

test: install
	$(PY) -m pytest -q tests

bench: install
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

gpu-check: install
	$(PY) benchmarks/gpu_smoke.py

clean-venv:
	rm -rf $(VENV)
