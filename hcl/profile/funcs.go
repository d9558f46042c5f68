package profile

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// chompFunc is go-cty's chomp (remove the newlines, \n, \r\n or \r, that
// end a string) without its regular expression, which go-cty compiles on
// every call and then tries at every position of the string: converted
// buildout templates call chomp on each inline text, and that was 5% of a
// 1000-part --recheck's CPU (docs/benchmarks.md). Trimming every trailing
// \r and \n is the same: any run of them is a sequence of \r\n, \r and \n.
var chompFunc = function.New(&function.Spec{
	Description:  stdlib.ChompFunc.Description(),
	Params:       []function.Parameter{{Name: "str", Type: cty.String}},
	Type:         function.StaticReturnType(cty.String),
	RefineResult: func(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() },
	Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
		return cty.StringVal(strings.TrimRight(args[0].AsString(), "\r\n")), nil
	},
})

// FetchURL fetches an extends URL pinned with #sha256=HEX and returns a
// local path. The command line wires it to the node's download cache; a
// library user without one gets a clear error.
var FetchURL = func(url string) (string, error) {
	return "", fmt.Errorf("cannot fetch %s: no download cache is configured (extend a local file instead)", url)
}

// stdFuncs are the functions every profile can call, from go-cty's standard
// library under the names Terraform users know.
var stdFuncs = map[string]function.Function{
	"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
	"max": stdlib.MaxFunc, "min": stdlib.MinFunc, "pow": stdlib.PowFunc,
	"signum": stdlib.SignumFunc, "parseint": stdlib.ParseIntFunc, "log": stdlib.LogFunc,
	"chomp": chompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
	"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
	"upper": stdlib.UpperFunc, "regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc,
	"regex_replace": stdlib.RegexReplaceFunc, "replace": stdlib.ReplaceFunc,
	"split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc, "substr": stdlib.SubstrFunc,
	"title": stdlib.TitleFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
	"trimsuffix": stdlib.TrimSuffixFunc, "trimspace": stdlib.TrimSpaceFunc,
	"strlen":    stdlib.StrlenFunc,
	"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc,
	"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
	"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
	"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "index": stdlib.IndexFunc,
	"keys": stdlib.KeysFunc, "length": stdlib.LengthFunc, "lookup": stdlib.LookupFunc,
	"merge": stdlib.MergeFunc, "range": stdlib.RangeFunc, "reverse": stdlib.ReverseListFunc,
	"setintersection": stdlib.SetIntersectionFunc, "setproduct": stdlib.SetProductFunc,
	"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc,
	"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "values": stdlib.ValuesFunc,
	"zipmap":     stdlib.ZipmapFunc,
	"jsonencode": stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
	"csvdecode": stdlib.CSVDecodeFunc, "formatdate": stdlib.FormatDateFunc,
	"timeadd":     stdlib.TimeAddFunc,
	"appendlines": appendLinesFunc, "removelines": removeLinesFunc,
	"md5":          hashFunc(func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }),
	"sha256":       hashFunc(func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }),
	"base64encode": hashFunc(func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }),
	"base64decode": base64DecodeFunc,
	// try and can, as Terraform has them (hcl/v2's ext/tryfunc): a value
	// that may be missing, such as an optional parameter, without an error.
	"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
}

func hashFunc(f func([]byte) string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(f([]byte(args[0].AsString()))), nil
		},
	})
}

var base64DecodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.NilVal, fmt.Errorf("not valid base64: %w", err)
		}
		return cty.StringVal(string(b)), nil
	},
})

// appendlines(text, line...) is buildout's "+=": the lines are added after
// text, each on its own line. A null text (no earlier value: base.NAME of a
// block defined for the first time) gives the lines alone, as buildout
// turns such a += into an assignment; an empty text gives an empty first
// line, as buildout's += on an option the block does not set.
var appendLinesFunc = function.New(&function.Spec{
	Params:   []function.Parameter{{Name: "text", Type: cty.String, AllowNull: true}},
	VarParam: &function.Parameter{Name: "lines", Type: cty.String},
	Type:     function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		parts := []string{}
		if !args[0].IsNull() {
			parts = append(parts, args[0].AsString())
		}
		for _, a := range args[1:] {
			parts = append(parts, a.AsString())
		}
		return cty.StringVal(strings.Join(parts, "\n")), nil
	},
})

// removelines(text, line...) is buildout's "-=": lines equal (after trimming)
// to one of the arguments are dropped. A null text gives "".
var removeLinesFunc = function.New(&function.Spec{
	Params:   []function.Parameter{{Name: "text", Type: cty.String, AllowNull: true}},
	VarParam: &function.Parameter{Name: "lines", Type: cty.String},
	Type:     function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].IsNull() {
			return cty.StringVal(""), nil
		}
		drop := map[string]bool{}
		for _, a := range args[1:] {
			for _, l := range strings.Split(a.AsString(), "\n") {
				drop[strings.TrimSpace(l)] = true
			}
		}
		var kept []string
		for _, l := range strings.Split(args[0].AsString(), "\n") {
			if !drop[strings.TrimSpace(l)] {
				kept = append(kept, l)
			}
		}
		return cty.StringVal(strings.Join(kept, "\n")), nil
	},
})

// fileFuncs returns file, fileexists and templatefile bound to the directory
// of the file that calls them, confined to the profile's directory trees.
func (p *Profile) fileFuncs(dir string, base map[string]function.Function) map[string]function.Function {
	read := func(path string) ([]byte, error) { return p.readFile(dir, path) }
	fns := make(map[string]function.Function, len(base)+3)
	for k, v := range base {
		fns[k] = v
	}
	fns["file"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := read(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(string(b)), nil
		},
	})
	fns["fileexists"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			_, err := read(args[0].AsString())
			return cty.BoolVal(err == nil), nil
		},
	})
	fns["templatefile"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			src, err := read(name)
			if err != nil {
				return cty.NilVal, err
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, fmt.Errorf("templatefile: vars must be an object, e.g. { port = 8080 }")
			}
			if d := checkBounds(src, filepath.Join(dir, name), true); d != nil {
				return cty.NilVal, hcl.Diagnostics{d}
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, filepath.Join(dir, name), hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			varMap := map[string]cty.Value{}
			if !vars.IsNull() {
				for k, v := range vars.AsValueMap() {
					varMap[k] = v
				}
			}
			for _, t := range tmpl.Variables() {
				if _, ok := varMap[t.RootName()]; !ok {
					return cty.NilVal, fmt.Errorf("template %s uses %q at %s, but vars has no such key", name, t.RootName(), t.SourceRange())
				}
			}
			// The template may not call templatefile itself: recursion is
			// refused, file and the pure functions stay available.
			inner := map[string]function.Function{}
			for k, v := range fns {
				if k != "templatefile" {
					inner[k] = v
				}
			}
			v, diags := tmpl.Value(&hcl.EvalContext{Variables: varMap, Functions: inner})
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			if v.Type() != cty.String {
				return cty.NilVal, fmt.Errorf("template %s did not produce a string", name)
			}
			return v, nil
		},
	})
	return fns
}

// readFile reads path (relative to dir) without leaving the profile's
// directory trees, even through symlinks: the file is opened through an
// os.Root of the tree that contains it.
func (p *Profile) readFile(dir, path string) ([]byte, error) {
	abs := path
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(dir, path)
	}
	abs = filepath.Clean(abs)
	for _, root := range p.roots {
		rel, err := filepath.Rel(root, abs)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		// Non-blocking, and only a regular file: a FIFO in the profile's
		// tree would hang the node that evaluates it.
		f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("cannot read %s: not a regular file", path)
		}
		return io.ReadAll(io.LimitReader(f, 64<<20))
	}
	return nil, fmt.Errorf("cannot read %s: profiles may only read files inside their own directory trees (%s)", path, strings.Join(p.roots, ", "))
}
