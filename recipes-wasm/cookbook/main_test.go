package main

import (
	"encoding/json"
	"slices"
	"testing"

	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// TestDescribe checks the description the host reads: every recipe and
// promise the documentation promises, each with an object schema.
func TestDescribe(t *testing.T) {
	var d struct {
		ABI     int    `json:"abi"`
		Module  string `json:"module"`
		Version string `json:"version"`
		Recipes map[string]struct {
			Description string         `json:"description"`
			Options     map[string]any `json:"options"`
		} `json:"recipes"`
		Promises map[string]struct {
			Description string         `json:"description"`
			Options     map[string]any `json:"options"`
		} `json:"promises"`
	}
	if err := json.Unmarshal(recipe.Default().Describe(), &d); err != nil {
		t.Fatal(err)
	}
	if d.ABI != 1 || d.Module != "cookbook" || d.Version != Version {
		t.Fatalf("header %d %q %q", d.ABI, d.Module, d.Version)
	}
	wantRecipes := []string{"build", "certificate-authority", "certificate-authority-request", "cmmi", "copy", "cron-entry", "download", "download-unpacked", "egg", "egg-custom", "egg-develop", "free-port", "generate-random", "gitclone", "json", "mac-address", "mkdirectory", "param-check", "password", "port-check", "promise-plugin", "publish", "random-integer", "random-time", "rubygems", "symlink", "template", "url-check", "urlparse", "userinfo", "wrapper", "write-file"}
	var got []string
	for name, r := range d.Recipes {
		got = append(got, name)
		if r.Description == "" || r.Options["type"] != "object" {
			t.Errorf("recipe %s: description %q, schema %v", name, r.Description, r.Options)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, wantRecipes) {
		t.Errorf("recipes %v, want %v", got, wantRecipes)
	}
	for _, p := range []string{"check_port_listening", "check_url_available", "check_file_state"} {
		if pr, ok := d.Promises[p]; !ok || pr.Options["type"] != "object" {
			t.Errorf("promise %s missing or without an object schema", p)
		}
	}
}
