# nrtool — two commands set up a fresh machine: `make demo` and `make test`.
# Everything a clean Debian machine lacks is installed here: the Debian libraries open3d links
# against, then a virtualenv in .venv with the pinned Python dependencies.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEBS   := libusb-1.0-0 libgl1 libegl1 libgomp1

.PHONY: install demo test bench models gpu-data clean system-deps

install: $(STAMP)

# Debian packages: install only the missing ones; without root, say what to install.
system-deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "nrtool needs the system libraries:$$missing (not a Debian system: install them by hand)"; \
	  elif [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "nrtool needs Debian packages:$$missing — run: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	@command -v $(PYTHON) >/dev/null || { echo "nrtool needs $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/nrtool --version
	bash pipelines/demo.sh

# One pytest-xdist worker per core, a test module per worker at a time (its module fixtures built
# once); the 15 slowest tests are listed at the end; pytest's exit status (5 when no test ran)
# is make's.
test: install
	$(PY) -m pytest -q -n auto --dist loadscope --durations=15

# Rebuild the small pretrained tiny models shipped in examples/models/ (~5 min on 2 cores).
models: install
	bash pipelines/tiny_models.sh

bench: install
	$(PY) bench/run.py

# Inputs for bench/gpu_check.sh on a GPU machine without Open3D (see the README's GPU section).
GPU_DATA ?= bench-out/gpu-data
gpu-data: install
	$(PY) bench/gpu_data.py $(GPU_DATA)

clean:
	rm -rf $(VENV) build *.egg-info demo-out
