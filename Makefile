# mvhand: the two commands a new user needs are `make demo` and `make test`.
# Both create a virtual environment in .venv and install mvhand into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only torch must come from the local wheel; never let pip pick a CUDA build.
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: install system-deps demo demo-synthetic test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[dev,viz,batch]"
	touch $@

install: system-deps $(VENV)/.installed

# Debian libraries open3d needs (import: libusb; headless rendering: Vulkan). Installed when
# run as root with apt-get available; otherwise it says what to install.
system-deps:
	@bash scripts/system_deps.sh

demo: install
	bash scripts/demo.sh

demo-synthetic: install
	bash scripts/demo_synthetic.sh

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check mvhand tests benchmarks scripts

clean:
	rm -rf $(VENV) demo_out .pytest_cache
