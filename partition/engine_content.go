package partition

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/slapnode/slapnode/internal/nofollow"
)

// contentSignature extends a part's signature with the content of the
// files its content options name (wasmhost.OptionSet.Content: a
// wrapper's hash-files). SlapOS's wrapper recipe hashes them on every
// buildout run, so a service is restarted when a configuration file it
// reads is rendered anew with other values although the wrapper's own
// options are the same; the signature does that here. Only files inside
// the part's directory (the partition, or the software) are read, without
// following links and refusing what is not a regular file: a path the
// partition's user planted cannot make the engine read elsewhere or block.
// A file that is missing counts as missing.
//
// paths are contentPathsOf the part's options: a recheck that does not
// evaluate the profile again (recheck.go) recomputes the signature from
// the paths it cached.
func contentSignature(sig, dir string, paths []string) string {
	if len(paths) == 0 {
		return sig
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", sig)
	root, err := nofollow.Open(dir)
	if err != nil {
		return sig
	}
	defer root.Close()
	for _, p := range paths {
		fmt.Fprintf(h, "%s\x00", p)
		rel, err := filepath.Rel(dir, filepath.Clean(p))
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || !filepath.IsAbs(p) {
			h.Write([]byte("outside\x00"))
			continue
		}
		f, _, err := root.OpenRegular(rel)
		if err != nil {
			h.Write([]byte("unreadable\x00"))
			continue
		}
		io.Copy(h, f)
		f.Close()
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// contentPathsOf lists, sorted, the paths the content options names of
// opts name.
func contentPathsOf(opts map[string]cty.Value, names []string) []string {
	var paths []string
	for _, name := range names {
		paths = append(paths, contentPaths(opts[name])...)
	}
	sort.Strings(paths)
	return paths
}

// contentPaths are the paths an option value names: a string of
// whitespace-separated paths (buildout's lines), or a list of strings.
func contentPaths(v cty.Value) []string {
	if v == cty.NilVal || v.IsNull() || !v.IsWhollyKnown() {
		return nil
	}
	switch {
	case v.Type() == cty.String:
		return strings.Fields(v.AsString())
	case v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, contentPaths(e)...)
		}
		return out
	}
	return nil
}
