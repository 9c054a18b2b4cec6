# ganvoice -- two entry points: `make demo` (runtime only, plays the bundled model) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
APT_PACKAGES := libportaudio2 libsndfile1 jackd2 espeak-ng flite sox \
	fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl ktuberling-data klettres-data \
	festival festvox-kallpc16k \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-python3-plugin-loader python3-gst-1.0

.PHONY: demo test system-deps venv runtime all-deps lint format pytest clean

demo: system-deps runtime
	$(BIN)/ganvoice-play --demo

test: system-deps all-deps lint pytest

system-deps:
	@if [ "$$(uname)" = "Darwin" ]; then \
	  echo "macOS: PortAudio comes with the sounddevice wheel; for the tests: brew install jack espeak-ng sox"; \
	elif [ "$$(id -u)" = "0" ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	elif dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "system packages present"; \
	else \
	  echo "ganvoice needs these Debian packages (run as root, or):"; \
	  echo "  sudo apt-get install -y $(APT_PACKAGES)"; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python

runtime: venv
	$(BIN)/pip install -q -e .

# torch first, pinned to the CPU wheel that lies on this kind of machine; elsewhere the user's torch is fine.
all-deps: venv
	$(BIN)/pip install -q torch==$(TORCH_VERSION) || echo "torch==$(TORCH_VERSION) not available here: [train] brings a torch"
	$(BIN)/pip install -q -e '.[train,dev]'

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest:
	$(BIN)/python -m pytest -q --timeout=900 tests; rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" && rc=0; exit $$rc

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
