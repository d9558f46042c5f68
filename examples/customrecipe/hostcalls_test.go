package customrecipe

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// forEachHostcalls runs f once per language on the testdata module that
// drives the host functions and the JSON code of the SDK.
func forEachHostcalls(t *testing.T, f func(t *testing.T, g *guest, dir string)) {
	for lang, path := range hostcallModules {
		t.Run(lang, func(t *testing.T) {
			wasm := readWasm(t, path)
			dir := tempDir(t)
			f(t, load(t, wasm, dir, newFakeHost()), dir)
		})
	}
}

// TestHostCalls checks the request each SDK sends and that it hands back the
// response obtained through the two-step exchange of ABI §6.
func TestHostCalls(t *testing.T) {
	cases := []struct {
		imp     string
		options map[string]any
		request string
		reply   string
	}{
		{"download", map[string]any{"url": "https://e.org/a.tgz", "sha256": "abc"},
			`{"url":"https://e.org/a.tgz","sha256":"abc"}`,
			`{"path":"/srv/cache/sha256/ab/abc","sha256":"abc","size":3}`},
		{"exec", map[string]any{"argv": []any{"make", "-j2"}, "dir": "/build"},
			`{"argv":["make","-j2"],"dir":"/build","env":{"GREETING":"hi there"},"timeout_ms":1234}`,
			`{"exit_code":0,"output":"done\n","error":""}`},
		{"tcp_probe", map[string]any{"host": "::1", "port": 8080},
			`{"host":"::1","port":8080,"timeout_ms":2000}`,
			`{"ok":false,"error":"connection refused"}`},
		{"http_get", map[string]any{"url": "http://[::1]:8080/"},
			`{"url":"http://[::1]:8080/","timeout_ms":5000,"insecure":false,"max_bytes":100}`,
			`{"status":200,"body":"h\u00e9llo \"w\"\n","error":""}`},
	}
	forEachHostcalls(t, func(t *testing.T, g *guest, dir string) {
		for _, c := range cases {
			g.host.reply = func(imp string, req []byte) []byte { return []byte(c.reply) }
			c.options["import"] = c.imp
			out := g.call("recipe_install", recipeInput("call", "install", dir, c.options))
			if out["error"] != "" {
				t.Errorf("%s: error = %q", c.imp, out["error"])
				continue
			}
			reqs := g.host.requests[c.imp]
			if len(reqs) != 1 {
				t.Errorf("%s: %d requests", c.imp, len(reqs))
				continue
			}
			if !sameJSON(t, reqs[0], []byte(c.request)) {
				t.Errorf("%s: request = %s, want %s", c.imp, reqs[0], c.request)
			}
			if got := dig(t, out, "outputs", "response"); !reflect.DeepEqual(got, decode(t, []byte(c.reply))) {
				t.Errorf("%s: response = %v, want %s", c.imp, got, c.reply)
			}
		}
		g.host.reply = func(string, []byte) []byte { return []byte(`{"ok":false,"error":"connection refused"}`) }
		if msgs := out(t, g, dir, "tcp_probe")["messages"]; !reflect.DeepEqual(msgs, []any{"host said: connection refused"}) {
			t.Errorf("messages = %v", msgs)
		}
	})
}

// out runs the call recipe for imp with the last configured reply.
func out(t *testing.T, g *guest, dir, imp string) map[string]any {
	t.Helper()
	return g.call("recipe_install", recipeInput("call", "install", dir, map[string]any{
		"import": imp, "host": "::1", "port": 1,
	}))
}

// TestHostCallFailures: a response the SDK cannot use is reported in the
// response's "error", like a failure the host reports itself.
func TestHostCallFailures(t *testing.T) {
	cases := []struct {
		name  string
		reply []byte
		want  string
	}{
		{"refused buffer", nil, "host refused the request buffer"},
		{"not JSON", []byte(`{"ok":tru`), "host response: invalid JSON at byte"},
		{"not an object", []byte(`[1,2]`), "host response is not an object"},
		{"empty", []byte{}, "host response: invalid JSON at byte 0"},
	}
	forEachHostcalls(t, func(t *testing.T, g *guest, dir string) {
		for _, c := range cases {
			g.host.reply = func(string, []byte) []byte { return c.reply }
			res := out(t, g, dir, "tcp_probe")
			if e, _ := dig(t, res, "outputs", "response", "error").(string); !strings.Contains(e, c.want) {
				t.Errorf("%s: error = %q, want it to contain %q", c.name, e, c.want)
			}
		}
	})
}

// TestJSONRoundTrip feeds the SDK's reader tricky input and checks that its
// writer gives the same values back, and what the typed getters see.
func TestJSONRoundTrip(t *testing.T) {
	options := map[string]any{
		"s":      "tab\t quote\" backslash\\ slash/ nul\u0000 é 😀 \u2028",
		"n":      []any{0.0, -0.5, 1e300, 123456789.0, -42.0, 2.5e-8},
		"nested": map[string]any{"a": map[string]any{"b": []any{true, false, nil, map[string]any{"c": "deep"}}}},
		"empty":  map[string]any{"o": map[string]any{}, "a": []any{}},
		"dotted": map[string]any{"x.y": 1.0},
		"big":    9007199254740992.0,
		"frac":   1.5,
		"paths":  []any{"nested.a.b.3.c", "nested.a.b", "n.4", "big", "frac", "n.9", "nested.a.b.0", "s", "dotted.x.y", "paths.0"},
	}
	// The reader must accept what the JSON grammar allows but Go does not
	// emit: whitespace everywhere, escaped slashes, \u escapes, exponents.
	raw := `{"recipe":"echo","part":"p","phase":"install","options": ` + string(jsonOf(t, options)) + `,
		"extra" : [ 1E2 , "\/\u00e9\ud83d\ude00" ] }`
	// Lone surrogates are valid JSON; like Go, the SDKs read them as U+FFFD.
	raw = strings.Replace(raw, `"frac"`, `"lone":"\ud800|\udc00|\ud800\u0041","frac"`, 1)
	options["lone"] = "\ufffd|\ufffd|\ufffdA"

	want := map[string]any{
		"nested.a.b.3.c": map[string]any{"type": "string", "count": 0.0, "int": -1.0, "string": "deep"},
		"nested.a.b":     map[string]any{"type": "array", "count": 4.0, "int": -1.0, "string": nil},
		"n.4":            map[string]any{"type": "number", "count": 0.0, "int": -42.0, "string": nil},
		"big":            map[string]any{"type": "number", "count": 0.0, "int": 9007199254740992.0, "string": nil},
		"frac":           map[string]any{"type": "number", "count": 0.0, "int": -1.0, "string": nil},
		"n.9":            map[string]any{"type": "missing", "count": 0.0, "int": -1.0, "string": nil},
		"nested.a.b.0":   map[string]any{"type": "bool", "count": 0.0, "int": -1.0, "string": nil},
		"s":              map[string]any{"type": "string", "count": 0.0, "int": -1.0, "string": options["s"]},
		"dotted.x.y":     map[string]any{"type": "missing", "count": 0.0, "int": -1.0, "string": nil},
		"paths.0":        map[string]any{"type": "string", "count": 0.0, "int": -1.0, "string": "nested.a.b.3.c"},
	}
	forEachHostcalls(t, func(t *testing.T, g *guest, dir string) {
		res := g.callRaw("recipe_install", []byte(raw))
		if res["error"] != "" {
			t.Fatalf("error = %q", res["error"])
		}
		// Numbers in their shortest form that reads back exactly.
		for _, want := range []string{`[0,-0.5,1e+300,123456789,-42,2.5e-`, `"big":9007199254740992,`, `"half":0.5,`} {
			if !strings.Contains(string(g.last), want) {
				t.Errorf("output lacks %s: %s", want, g.last)
			}
		}
		outs := res["outputs"].(map[string]any)
		if !reflect.DeepEqual(outs["options"], decode(t, jsonOf(t, options))) {
			t.Errorf("options came back as %v", outs["options"])
		}
		probe := outs["probe"].(map[string]any)
		for p, w := range want {
			if !reflect.DeepEqual(probe[p], w) {
				t.Errorf("probe %s = %v, want %v", p, probe[p], w)
			}
		}
		for k, w := range map[string]any{
			"bad_utf8": "a\ufffdb\ufffd", "controls": "tab\tnl\nbell\a", "nan": nil, "half": 0.5, "yes": true,
		} {
			if !reflect.DeepEqual(outs[k], w) {
				t.Errorf("output %s = %#v, want %#v", k, outs[k], w)
			}
		}
		if !reflect.DeepEqual(res["installed"], []any{"/nowhere/echo"}) {
			t.Errorf("installed = %v", res["installed"])
		}
		if len(g.host.logs) != 1 || g.host.logs[0] != (logLine{2, "echo p"}) {
			t.Errorf("logs = %v", g.host.logs)
		}
	})
}

func TestMalformedInput(t *testing.T) {
	bad := []string{
		``, ` `, `{`, `{"a":}`, `{"a":1,}`, `[1 2]`, `{"a" 1}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
		`"\x"`, `"\u12"`, `"\ud800\u12"`, `"a` + "\n" + `b"`, `tru`, `nul`, `{} {}`, `"abc`,
		`NaN`, `Infinity`, `0x10`, strings.Repeat("[", 200) + strings.Repeat("]", 200),
	}
	forEachHostcalls(t, func(t *testing.T, g *guest, dir string) {
		for _, in := range bad {
			res := g.callRaw("recipe_install", []byte(in))
			if e, _ := res["error"].(string); !strings.Contains(e, "invalid JSON at byte") {
				t.Errorf("%q: error = %q", in, e)
			}
		}
		// Deep but within the limit is fine.
		ok := `{"recipe":"echo","options":{"deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`
		if res := g.callRaw("recipe_install", []byte(ok)); res["error"] != "" {
			t.Errorf("depth 100: %v", res["error"])
		}
	})
}

func TestFailuresAndUninstall(t *testing.T) {
	forEachHostcalls(t, func(t *testing.T, g *guest, dir string) {
		res := g.call("recipe_install", recipeInput("fail", "install", dir, map[string]any{}))
		if res["error"] != "recipe fail failed (code 7)" || !reflect.DeepEqual(res["messages"], []any{"about to fail"}) {
			t.Errorf("bare failure: %v", res)
		}
		res = g.call("recipe_install", recipeInput("fail", "install", dir, map[string]any{"message": "disk full"}))
		if res["error"] != "disk full" {
			t.Errorf("failure with message: %v", res)
		}
		res = g.call("recipe_uninstall", recipeInput("echo", "uninstall", dir, nil))
		if res["error"] != "" || !reflect.DeepEqual(res["messages"], []any{"uninstalled greeting"}) {
			t.Errorf("uninstall echo: %v", res)
		}
		// A recipe without an uninstall handler has nothing to clean up.
		res = g.call("recipe_uninstall", recipeInput("call", "uninstall", dir, nil))
		if res["error"] != "" || !reflect.DeepEqual(res["messages"], []any{}) || !reflect.DeepEqual(res["outputs"], map[string]any{}) {
			t.Errorf("uninstall call: %v", res)
		}
		for _, ok := range []bool{true, false} {
			res = g.call("promise_check", map[string]any{"promise": "always", "name": "p1", "options": map[string]any{"ok": ok}})
			if res["ok"] != ok || res["message"] != "checked p1" {
				t.Errorf("promise ok=%v: %v", ok, res)
			}
		}
		d := g.describe()
		if got := dig(t, d, "recipes", "call", "options"); !reflect.DeepEqual(got, map[string]any{"type": "object"}) {
			t.Errorf("default schema = %v", got)
		}
		if got := dig(t, d, "recipes", "fail", "options", "properties", "message", "type"); got != "string" {
			t.Errorf("fail schema = %v", got)
		}
		if _, ok := dig(t, d, "recipes", "call").(map[string]any)["outputs"]; ok {
			t.Error("recipe call declares outputs it has none of")
		}
	})
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("%s: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
