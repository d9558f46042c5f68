package format

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree lists every file under dir with its mode, size and modification
// time: what a dry run must leave as it found it.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return b.String()
}

// TestDryRunChangesNothing: 'node format --dry-run' on a root that does
// not exist creates neither the root nor its lock file, and on a formatted
// root (growing it) or with unformat it touches no file, while saying what
// it would do.
func TestDryRunChangesNothing(t *testing.T) {
	parent := nodeRoot(t)
	root := filepath.Join(parent, "new-root")
	cfg := parse(t, root, "partitions {\n count = 2\n}\n")
	res, err := Format(Options{Config: cfg, Rootless: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) == 0 {
		t.Error("the dry run planned nothing for a new root")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("the dry run created %v in %s", entries, parent)
	}

	if _, err := Format(Options{Config: cfg, Rootless: true}); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)
	grown := parse(t, root, "partitions {\n count = 4\n}\n")
	res, err = Format(Options{Config: grown, Rootless: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) == 0 {
		t.Error("the dry run of a grown configuration planned nothing")
	}
	if after := tree(t, root); after != before {
		t.Errorf("format --dry-run changed the root:\nbefore\n%s\nafter\n%s", before, after)
	}
	un, err := Unformat(Options{Config: cfg, Rootless: true, Purge: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(un.Changes) == 0 {
		t.Error("the dry run of unformat planned nothing")
	}
	if after := tree(t, root); after != before {
		t.Errorf("unformat --dry-run changed the root:\nbefore\n%s\nafter\n%s", before, after)
	}
}
