package customrecipe

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary input to recipe_install of both hostcalls
// modules, on one long-lived instance each, and compares the SDKs' JSON
// readers with Go's: the guest must call its input invalid exactly when
// encoding/json does, and always answer with valid UTF-8 JSON.
//
//	go test -fuzz FuzzParse -fuzztime 1m ./examples/customrecipe/
func FuzzParse(f *testing.F) {
	guests := map[string]*guest{}
	for lang, path := range hostcallModules {
		guests[lang] = load(f, readWasm(f, path), f.TempDir(), newFakeHost())
	}
	for _, s := range []string{
		`{"recipe":"echo","options":{"a":[1,2.5e-3,true,null,"x\u00e9\ud83d\ude00"]}}`,
		`{"recipe":"echo","options":{"s":"\ud800\u0041","n":-0.0e+0}}`,
		`{"recipe":"fail"}`, `[1,{"a":{}}]`, `"str"`, `-1E400`, `{"a":1,}`, `{"a" 1}`, `01`, `"\x"`,
		` { "recipe" : "call" , "options" : { "import" : "nope" } } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// The SDKs limit nesting to 128; Go allows far more.
		if strings.Count(string(in), "[")+strings.Count(string(in), "{") > 100 {
			t.Skip()
		}
		goValid := json.Valid(in)
		for lang, g := range guests {
			g.t = t
			res := g.callRaw("recipe_install", in)
			e, _ := res["error"].(string)
			invalid := strings.Contains(e, "invalid JSON at byte")
			if invalid == goValid {
				t.Errorf("%s: %q: Go says valid=%v, guest error %q", lang, in, goValid, e)
			}
			if !utf8.Valid(g.last) {
				t.Errorf("%s: output is not UTF-8", lang)
			}
		}
	})
}
