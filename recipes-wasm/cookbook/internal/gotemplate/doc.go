// Package gotemplate is Go 1.26's text/template (exec.go, funcs.go,
// option.go and template.go, with internal/fmtsort as fmtsort.go; the
// parser is the standard library's text/template/parse) without one
// feature: a field or variable chain never calls a method of the data.
//
// Why a copy: text/template looks methods up by name at run time
// (reflect.Value.MethodByName). When a program can reach that call, Go's
// linker must keep every exported method of every type that is ever
// converted to an interface, in case a template names it. In the cookbook
// that was 1.2 MB of its 10.7 MB WebAssembly module and 1,200 of its 5,700
// functions (each costing 320 bytes of the runtime's findfunctab in the
// guest's memory), compiled and loaded at every apply
// (docs/adr/0016-cookbook-text-template-without-methods.md).
//
// What it changes: nothing for the template recipe's engine = "go", whose
// data is decoded JSON (string, bool, int64, float64, nil, []any,
// map[string]any): none of those types has a method, so text/template
// never called one either; the differential test renders the same
// templates with both packages. Functions (the FuncMap and the builtins)
// are called as before.
//
// The files keep their Go Authors copyright (LICENSE, BSD-style); to
// update, copy them again from $GOROOT/src/text/template and remove the
// MethodByName lookup in (*state).evalField.
package gotemplate
