package local

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/slapnode/slapnode/partition"
)

// recordedBuilds counts what an apply tells the daemon's metrics.
type recordedBuilds struct {
	Services
	n int
}

func (r *recordedBuilds) RecordBuild(ctx context.Context, url string, d time.Duration, err error) error {
	r.n++
	return nil
}

// TestRecheckFromCacheSaysWhatAFullRecheckSays: `apply --recheck` of a
// complete software-only release is answered from the recheck cache
// (no profile loaded) with the same output, the same report and the same
// build recorded as one that evaluates the profile; a missing installed
// file is installed again.
func TestRecheckFromCacheSaysWhatAFullRecheckSays(t *testing.T) {
	n := openNode(t)
	ctx := context.Background()
	prof := filepath.Join(t.TempDir(), "software.hcl")
	os.WriteFile(prof, []byte(`software "rc" {
  version = "1"
}
part "dir" {
  recipe = "cookbook:mkdirectory"
  path   = "${software.path}/d"
}
part "f" {
  recipe  = "cookbook:write-file"
  output  = "${part.dir.path}/f.txt"
  content = "f"
}
`), 0o644)
	if _, err := n.Apply(ctx, prof, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	apply := func() (*ApplyResult, string, int) {
		t.Helper()
		var out bytes.Buffer
		n.Out = &out
		defer func() { n.Out = nil }()
		rec := &recordedBuilds{}
		if err := n.CheckProfiles(ctx, prof); err != nil {
			t.Fatal(err)
		}
		res, err := n.Apply(ctx, prof, ApplyOptions{Recheck: true, Checked: true, Services: rec})
		if err != nil {
			t.Fatal(err)
		}
		return res, out.String(), rec.n
	}
	cached, cachedOut, cachedBuilds := apply()
	if cached.Software.Profile != nil {
		t.Fatal("the recheck parsed the profile: the cache did not answer")
	}
	// The cache's place (docs/node.md §6).
	if err := os.Remove(filepath.Join(n.Root, "state", "recheck", partition.SoftwareName(cached.Software.URL)+".json")); err != nil {
		t.Fatal(err)
	}
	full, fullOut, fullBuilds := apply()
	if full.Software.Profile == nil {
		t.Fatal("without its cache the recheck did not evaluate the profile")
	}
	if cachedOut != fullOut || cachedBuilds != fullBuilds || !reflect.DeepEqual(cached.Software.Report, full.Software.Report) {
		t.Fatalf("cached recheck:\n%q %d %+v\nfull recheck:\n%q %d %+v", cachedOut, cachedBuilds, cached.Software.Report,
			fullOut, fullBuilds, full.Software.Report)
	}
	f := filepath.Join(full.Software.Path, "d", "f.txt")
	os.Remove(f)
	res, out, _ := apply()
	if res.Software.Report.Counts["reinstall"] != 1 {
		t.Fatalf("missing file: %s\n%s", res.Software.Report.Summary(), out)
	}
	if _, err := os.Stat(f); err != nil {
		t.Fatal(err)
	}
}
