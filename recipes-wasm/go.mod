module github.com/slapnode/slapnode/recipes-wasm

go 1.26
