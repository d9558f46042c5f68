// Package values holds the cookbook's recipes that produce values rather
// than files: publish (connection parameters) and password /
// generate-random (secrets stable across applies).
package values

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/randx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const alphanumeric = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

const randomSchema = `{"additionalProperties":false,"type":"object","properties":{
	"length":{"type":["integer","string"],"description":"number of characters (default 16; bytes is an alias)"},
	"bytes":{"type":["integer","string"]},
	"chars":{"type":"string","minLength":2,"description":"alphabet (default letters and digits)"},
	"storage-path":{"type":"string","description":"file keeping the value (reused when present, written otherwise)"}
}}`

// Register adds the recipes of this package to g.
func Register(g *recipe.Registry) {
	g.Register("publish", recipe.Recipe{
		Description: "Publish connection parameters (slapos.cookbook:publish, and publish.serialised with serialised = true).",
		Schema: `{"type":"object","properties":{
			"serialised":{"type":["boolean","string"],"description":"publish one parameter _ holding the others as a JSON object (slapos.cookbook:publish.serialised)"}
		}}`,
		Install: publish,
	})
	registerMore(g)
	g.Register("password", recipe.Recipe{
		Description: "Generate a password once and keep it across applies (slapos.cookbook:generate.password); outputs passwd and password.",
		Schema:      randomSchema,
		Outputs:     []string{"passwd", "password"},
		Install:     random("passwd", "password"),
	})
	g.Register("generate-random", recipe.Recipe{
		Description: "Generate a random string once and keep it across applies; output value.",
		Schema:      randomSchema,
		Outputs:     []string{"value"},
		Install:     random("value"),
	})
}

// publish outputs the values to publish: the engine sends a partition's
// published values to the master as its connection parameters. As in
// slapos.cookbook, options whose buildout name starts with "-" are the
// recipe's own (written __2d… in HCL), and -publish, when set, lists the
// options to publish. With serialised, the values go as one parameter, _,
// a JSON object (slapos.cookbook:publish.serialised).
func publish(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	serialised, err := opts.Bool("serialised", false)
	if err != nil {
		return recipe.Result{}, err
	}
	names := map[string]string{} // buildout name → option key
	for k := range opts {
		if k != "serialised" {
			names[fsx.Unmangle(k)] = k
		}
	}
	var keys []string
	if key, ok := names["-publish"]; ok {
		list, err := opts.StringList(key)
		if err != nil {
			return recipe.Result{}, err
		}
		for _, l := range list {
			for _, n := range strings.Fields(l) {
				if _, ok := names[n]; !ok {
					return recipe.Result{}, fmt.Errorf("-publish names %q, which this part does not set", n)
				}
				keys = append(keys, n)
			}
		}
	} else {
		for n := range names {
			if !strings.HasPrefix(n, "-") {
				keys = append(keys, n)
			}
		}
	}
	out := make(map[string]any, len(keys))
	if serialised {
		values := make(map[string]any, len(keys))
		for _, n := range keys {
			values[n] = opts[names[n]]
		}
		b, err := json.Marshal(values)
		if err != nil {
			return recipe.Result{}, err
		}
		out["_"] = string(b)
	} else {
		for _, n := range keys {
			out[names[n]] = opts[names[n]]
		}
	}
	return recipe.Result{Outputs: out, Messages: []string{fmt.Sprintf("published %d values", len(keys))}}, nil
}

// random returns the install function of password-like recipes: the value
// comes from storage-path when that file holds one, else from the previous
// install when it still fits length and chars, else it is generated.
func random(names ...string) recipe.Func {
	return func(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
		length, err := opts.Int("length", 0)
		if err != nil {
			return recipe.Result{}, err
		}
		if length == 0 {
			if length, err = opts.Int("bytes", 16); err != nil {
				return recipe.Result{}, err
			}
		}
		if length < 1 || length > 4096 {
			return recipe.Result{}, fmt.Errorf("option \"length\": %d is not between 1 and 4096", length)
		}
		chars, err := opts.StringOr("chars", alphanumeric)
		if err != nil {
			return recipe.Result{}, err
		}
		if utf8.RuneCountInString(chars) < 2 {
			return recipe.Result{}, errors.New(`option "chars" needs at least two characters`)
		}
		storage, err := opts.StringOr("storage-path", "")
		if err != nil {
			return recipe.Result{}, err
		}
		var installed []string
		value, origin := "", ""
		if storage != "" {
			storage = fsx.Resolve(ctx, storage)
			if b, err := os.ReadFile(storage); err == nil && strings.TrimSpace(string(b)) != "" {
				value, origin = strings.TrimSpace(string(b)), "kept from "+storage
			} else if err != nil && !errors.Is(err, os.ErrNotExist) {
				return recipe.Result{}, fmt.Errorf("reading storage-path: %w", err)
			}
		}
		if value == "" {
			if prev, ok := ctx.PreviousOutput(names[0]); ok {
				if s, ok := prev.(string); ok && fits(s, int(length), chars) {
					value, origin = s, "kept from the previous install"
				}
			}
		}
		if value == "" {
			if value, err = generate(int(length), chars); err != nil {
				return recipe.Result{}, err
			}
			origin = "generated"
		}
		if storage != "" {
			if err := fsx.WriteFile(ctx, storage, []byte(value), 0o600); err != nil {
				return recipe.Result{}, err
			}
			installed = append(installed, storage)
		}
		out := map[string]any{}
		for _, n := range names {
			out[n] = value
		}
		if storage != "" {
			out["storage-path"] = storage
		}
		return recipe.Result{Outputs: out, Installed: installed, Messages: []string{names[0] + " " + origin}}, nil
	}
}

func fits(s string, length int, chars string) bool {
	if utf8.RuneCountInString(s) != length {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune(chars, r) {
			return false
		}
	}
	return true
}

// generate draws length characters uniformly from chars with randx
// (WASI random_get under slapnode).
func generate(length int, chars string) (string, error) {
	alphabet := []rune(chars)
	var b strings.Builder
	for range length {
		n, err := randx.IntN(int64(len(alphabet)))
		if err != nil {
			return "", err
		}
		b.WriteRune(alphabet[n])
	}
	return b.String(), nil
}
