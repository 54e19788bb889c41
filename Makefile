# Every set-up step lives here, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint format bench clean package tf-check checkov browser

setup: $(STAMP)

# Re-install whenever pyproject.toml changes; the stamp keeps repeated runs instant.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the whole pipeline locally on a seeded burst (issue 3); prints the summary and dashboards.
run: setup
	$(BIN)/sales-pipeline run $(ARGS)

## test: lint, type-check, Terraform checks, then the whole test suite (unit, functional, integration,
## including `terraform apply` against a moto_server, which needs the zips from `package`, and the report in
## headless Chromium, which `browser` installs).
test: setup lint tf-check checkov package browser
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: throughput and cost figures written to BENCHMARKS.md.
bench: setup
	$(BIN)/python -m benchmarks

## package: the two Lambda zips in .build/ (deterministic; Lambda-platform wheels). Run before `terraform apply`.
package: setup
	$(BIN)/python scripts/package_lambdas.py

## browser: Chromium from the OS packages (Debian's `chromium`), for the report's headless-browser test;
## installed with apt-get when missing (as root, as in CI), otherwise says what to run.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ]; then echo "chromium is missing: run 'sudo apt-get update && sudo apt-get install -y chromium'"; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# Offline Terraform (CI and this machine): providers from a local filesystem mirror, never the registry.
# Real deployments do not use this; they run plain `terraform init` in terraform/.
TERRAFORM   ?= terraform
TF_MIRROR   ?= $(shell [ -d /opt/tf-plugins/registry.terraform.io ] && echo /opt/tf-plugins || \
                 find / -path '*/registry.terraform.io/hashicorp/aws/*' -name 'terraform-provider-aws*' 2>/dev/null | \
                 head -n 1 | sed 's|/registry.terraform.io/.*||')
TF_OFFLINE  := CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_CLI_CONFIG_FILE=$(CURDIR)/.build/offline.tfrc \
               TF_DATA_DIR=$(CURDIR)/.build/terraform-data

# Without a mirror (a developer's machine with internet access) the file is empty: the registry is used.
.build/offline.tfrc: terraform/offline.tfrc
	mkdir -p .build
	@if [ -n "$(TF_MIRROR)" ]; then sed 's|/opt/tf-plugins|$(TF_MIRROR)|' terraform/offline.tfrc > $@; \
	else echo "no hashicorp/aws provider mirror found: terraform init will use the registry"; : > $@; fi

## tf-check: terraform fmt, init (offline, against the provider mirror) and validate.
tf-check: .build/offline.tfrc
	$(TF_OFFLINE) $(TERRAFORM) fmt -check -recursive terraform
	$(TF_OFFLINE) $(TERRAFORM) -chdir=terraform init -backend=false -input=false -no-color >/dev/null
	$(TF_OFFLINE) $(TERRAFORM) -chdir=terraform validate -no-color

# checkov pins bc-python-hcl2, which overwrites python-hcl2's `hcl2`: it gets a venv of its own.
CHECKOV_VENV    := .venv-checkov
CHECKOV_VERSION ?= 3.3.30

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

## checkov: static security checks over terraform/ (offline); zero failures, deliberate skips inline.
checkov: $(CHECKOV_VENV)/.installed
	@mkdir -p .build
	@BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --directory terraform --framework terraform \
	    --skip-download --compact --quiet > .build/checkov.txt; status=$$?; cat .build/checkov.txt; \
	  if grep -q "Parsing errors: [1-9]" .build/checkov.txt; then \
	    echo "checkov could not parse a file, so its checks did not run on it: fix the HCL"; exit 1; fi; \
	  exit $$status

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .build .pytest_cache .mypy_cache .ruff_cache
