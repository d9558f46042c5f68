// Package profile is slapnode's profile language: it loads HCL software and
// instance profiles with their extends chain, merges blocks per attribute,
// resolves buildout-style macros, orders parts by the references between them
// and evaluates expressions with go-cty, reporting every problem as an HCL
// diagnostic with file:line:col.
//
// The package knows nothing about recipes or partitions: it hands the engine
// (package partition) an ordered graph of blocks and an Evaluator that turns a
// block's expressions into values once the parts it references are known.
//
// The language is documented in docs/profiles.md.
package profile
