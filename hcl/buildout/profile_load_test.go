package buildout

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/slapnode/slapnode/hcl/profile"
)

// acceptedLoadErrors are the load failures buildout has too: an extends URL
// that is not cached, and a <= macro naming a section that does not exist
// (buildout fails when the section is used, slapnode's loader at load time).
var acceptedLoadErrors = map[string]bool{"Cannot extend URL": true, "Unknown macro": true}

func unexpected(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if d.Summary == "Cannot extend URL" {
			return nil // what the URL defines is missing: nothing else to judge
		}
	}
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError && !acceptedLoadErrors[d.Summary] {
			out = append(out, d)
		}
	}
	return out
}

// Converted files load in slapnode's own profile loader: per file (with
// their extends, converted alongside in the same layout) and flattened.
func TestConvertedProfilesLoad(t *testing.T) {
	corpus := corpusDir(t)
	dir := t.TempDir()
	rows := readManifest(t, corpus)
	for _, r := range rows {
		src, err := os.ReadFile(filepath.Join(corpus, r.Path))
		if err != nil {
			t.Fatal(err)
		}
		res, err := ConvertFile(r.Path, src, ConvertOptions{})
		if err != nil || res.HCL == nil {
			continue
		}
		p := filepath.Join(dir, res.Output)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, res.HCL, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loaded, flat, total := 0, 0, 0
	for _, r := range rows {
		if !isBuildoutClass(r.Class) || (r.Closure != "complete" && r.Closure != "none") {
			continue
		}
		total++
		_, diags := profile.Load(filepath.Join(dir, HCLName(r.Path)), profile.Software)
		if u := unexpected(diags); len(u) > 0 {
			t.Errorf("%s: %v", r.Path, u)
		} else if !diags.HasErrors() {
			loaded++
		}
		res, err := ConvertClosure(filepath.Join(corpus, r.Path), LoadOptions{}, ConvertOptions{})
		if errors.Is(err, ErrNotCached) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		p := filepath.Join(dir, "flat", HCLName(r.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, res.HCL, 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags = profile.Load(p, profile.Software)
		if u := unexpected(diags); len(u) > 0 {
			t.Errorf("%s flattened: %v", r.Path, u)
		} else if !diags.HasErrors() {
			flat++
		}
	}
	t.Logf("profile.Load accepts %d of %d per-file conversions and %d flattened closures", loaded, total, flat)
}
