# The architecture picture (docs/architecture.md), drawn by Graphviz from
# its source: `make docs` after editing docs/architecture.dot (Debian:
# apt-get install graphviz). The SVG is committed, so reading the docs
# needs no Graphviz.
.PHONY: docs
docs: docs/architecture.svg

docs/architecture.svg: docs/architecture.dot
	@command -v dot >/dev/null 2>&1 || { echo "make docs: Graphviz's dot is not on PATH; install it with: sudo apt-get install -y graphviz"; exit 1; }
	dot -Tsvg $< -o $@
