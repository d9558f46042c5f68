package partition

import (
	"encoding/json"
	"strings"
	"testing"
)

// A plan never shows a secret: values named like one, values a schema
// marks secret, and a secret's occurrences inside other values.
func TestMaskerHidesSecrets(t *testing.T) {
	m := NewMasker()
	m.AddSchema([]byte(`{"properties": {"admin-pass": {"type": "string", "format": "password"}, "api-key-id": {"type": "string", "secret": false}}}`))
	m.AddNamed(map[string]any{"admin-pass": "hunter22", "port": 8080, "db_password": "s3cr3t!x"}, false)
	m.AddNamed(map[string]any{"value": "generated-token-1"}, true) // a generated password part's outputs
	for _, tc := range []struct {
		path, old, new string
		want           string
	}{
		{"db_password", `"a"`, `"b"`, `db_password: "(sensitive)" → "(sensitive)"`},
		{"admin-pass", `"x1"`, `"x2"`, `admin-pass: "(sensitive)" → "(sensitive)"`},
		{"api-key-id", `"k1"`, `"k2"`, `api-key-id: "k1" → "k2"`},
		{"config", `"user=me password=s3cr3t!x"`, `"user=you password=s3cr3t!x"`, `config: "user=me password=(sensitive)" → "user=you password=(sensitive)"`},
		{"context", `{"token": "generated-token-1", "port": 1}`, `{"token": "generated-token-1", "port": 2}`, `context.port: 1 → 2`},
		{"env", `{"A": "1"}`, `{"A": "1", "SECRET_X": "zz"}`, `env.SECRET_X: (none) → "(sensitive)"`},
	} {
		cs := m.DiffObjects("", json.RawMessage(`{"`+tc.path+`": `+tc.old+`}`), json.RawMessage(`{"`+tc.path+`": `+tc.new+`}`))
		var lines []string
		for _, c := range cs {
			old, new := string(c.Old), string(c.New)
			if c.Old == nil {
				old = "(none)"
			}
			lines = append(lines, c.Path+": "+old+" → "+new)
		}
		got := strings.Join(lines, "; ")
		if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.path, got, tc.want)
		}
		if strings.Contains(got, "hunter22") || strings.Contains(got, "s3cr3t") || strings.Contains(got, "generated-token-1") {
			t.Errorf("%s: a secret shows: %s", tc.path, got)
		}
	}
}
