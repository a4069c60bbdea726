# Set-up and entry points. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ecsim run --out results/default

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Re-pin every dependency after changing pyproject.toml (needs network).
lock:
	rm -rf /tmp/ecsim-lock && $(PYTHON) -m venv /tmp/ecsim-lock
	/tmp/ecsim-lock/bin/python -m pip install -q ".[test]"
	/tmp/ecsim-lock/bin/python -m pip freeze --exclude ecsim > requirements.lock

clean:
	rm -rf $(VENV) results
