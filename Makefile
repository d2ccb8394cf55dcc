# madoguchi — `make run` brings up Asterisk and the engine; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config
STATE  ?= state
# Debian packages the project needs on the host (Asterisk itself comes in its own root fs)
DEB_PACKAGES := mmdebstrap sip-tester sox espeak-ng python3-venv util-linux ffmpeg \
                open-jtalk open-jtalk-mecab-naist-jdic hts-voice-nitech-jp-atr503-m001 \
                chromium fonts-ipaexfont-gothic postgresql poppler-utils \
                ghostscript libtiff-tools

.PHONY: run test lint unit e2e deps venv pbx clean-state bench

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  case "$$missing" in *hts-voice*) $(PYTHON) ivr/apt_contrib.py;; esac; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BIN)/madoguchi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/madoguchi

# Asterisk: a system Asterisk >= 20 if installed, else the cached Debian sid root fs
pbx: deps venv
	$(BIN)/madoguchi --config $(CONFIG) --state $(STATE) pbx build

run: pbx
	$(BIN)/madoguchi --config $(CONFIG) --state $(STATE) up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -m "not asterisk"

e2e: pbx
	MADOGUCHI_E2E_REQUIRED=1 $(BIN)/pytest -m asterisk

test: pbx lint
	MADOGUCHI_E2E_REQUIRED=1 $(BIN)/pytest
	# the walking skeleton again with the engine on a throwaway PostgreSQL (production's database)
	MADOGUCHI_E2E_REQUIRED=1 MADOGUCHI_E2E_DATABASE=postgresql $(BIN)/pytest -m asterisk \
	  tests/e2e/test_walking_skeleton.py

# Speed and capacity on this machine, printed as tables (README, Benchmarks): the engine's
# control path, then the same SIPp load through madoguchi and through app_queue, then the knee
bench: pbx
	$(BIN)/python -m bench.micro
	$(BIN)/python -m bench.load --calls 100 --rate 1 --operators 5
	$(BIN)/python -m bench.load --knee 20,40,60,80,90
	$(BIN)/python -m bench.bookings

clean-state:
	rm -rf $(STATE)
