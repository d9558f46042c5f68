package jinja

import (
	"encoding/json"
	"os"
	"testing"
)

// TestJinja2Cases renders testdata/cases.json, whose expected outputs are
// Python Jinja2's (testdata/jinja2_check.py checks them against it).
func TestJinja2Cases(t *testing.T) {
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name      string            `json:"name"`
		Tpl       string            `json:"tpl"`
		Vars      map[string]any    `json:"vars"`
		Templates map[string]string `json:"templates"`
		Want      string            `json:"want"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			load := func(name string) (string, error) {
				if s, ok := c.Templates[name]; ok {
					return s, nil
				}
				return "", os.ErrNotExist
			}
			got, err := RenderWith("case", c.Tpl, c.Vars, load)
			if err != nil {
				t.Fatalf("%s: %v", c.Tpl, err)
			}
			if got != c.Want {
				t.Errorf("%s\n got %q\nwant %q", c.Tpl, got, c.Want)
			}
		})
	}
}
