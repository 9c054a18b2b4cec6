# ganvoice -- two entry points: `make demo` (runtime only, plays the bundled model) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Debian packages, in two lists. The runtime (`make demo`) needs only PortAudio and libsndfile; the tests
# and the training data need the rest (JACK, the synthetic voices, the speech data packages, GStreamer).
# `make test` (CI: .ci/run, as root on a fresh clone) installs both. Add a package to the list that needs it.
RUNTIME_APT_PACKAGES := libportaudio2 libsndfile1
TEST_APT_PACKAGES := jackd2 espeak-ng flite sox \
	fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl ktuberling-data klettres-data \
	festival festvox-kallpc16k \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-python3-plugin-loader python3-gst-1.0
APT_PACKAGES := $(RUNTIME_APT_PACKAGES) $(TEST_APT_PACKAGES)

.PHONY: demo test system-deps runtime-system-deps venv runtime all-deps lint format pytest clean

demo: runtime-system-deps runtime
	$(BIN)/ganvoice-play --demo

test: system-deps all-deps lint pytest

# $(call apt_install,PACKAGES,MACOS_NOTE): apt-get install as root; otherwise the exact line to run.
define apt_install
	@if [ "$$(uname)" = "Darwin" ]; then \
	  echo "macOS: $(2)"; \
	elif [ "$$(id -u)" = "0" ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(1); \
	elif dpkg -s $(1) >/dev/null 2>&1; then \
	  echo "system packages present"; \
	else \
	  echo "ganvoice needs these Debian packages (run as root, or):"; \
	  echo "  sudo apt-get install -y $(1)"; \
	fi
endef

# the runtime's packages only (make demo)
runtime-system-deps:
	$(call apt_install,$(RUNTIME_APT_PACKAGES),PortAudio comes with the sounddevice wheel)

# everything: the runtime's, the tests' and the training data's packages (make test)
system-deps:
	$(call apt_install,$(APT_PACKAGES),PortAudio comes with the sounddevice wheel; for the tests: brew install jack espeak-ng sox)

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
