# convert.mk: goldens of the .cfg resolver (hcl/buildout package). `make goldens`
# regenerates hcl/buildout/testdata/goldens with Debian's zc.buildout
# (python3-zc.buildout, run by /usr/bin/python3, not a pyenv python) from the
# public corpus; `go test ./hcl/buildout` compares slapnode's resolution with them.
# Nothing is appended to WASM_OUTPUTS.
BUILDOUT_PYTHON ?= /usr/bin/python3
CORPUS_SLAPOS ?= $(firstword $(wildcard ../shared/corpus/slapos shared/corpus/slapos /work/shared/corpus/slapos))
GOLDENS_DIR := hcl/buildout/testdata/goldens

.PHONY: goldens
goldens:
	@test -n "$(CORPUS_SLAPOS)" || { echo "goldens: shared/corpus/slapos not found; set CORPUS_SLAPOS=DIR"; exit 1; }
	rm -f $(GOLDENS_DIR)/*.json
	$(BUILDOUT_PYTHON) hcl/buildout/buildout-goldens.py $(CORPUS_SLAPOS) $(GOLDENS_DIR)
