// Package download holds the cookbook's download and download-unpacked
// recipes (slapos.recipe.build:download and :download-unpacked).
package download

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/archive"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/files"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const checksums = `
	"url":{"type":"string","description":"http(s) or file:// URL, or a path relative to the profile directory"},
	"sha256":{"type":"string","pattern":"^[0-9a-fA-F]{64}$"},
	"md5sum":{"type":"string","pattern":"^[0-9a-fA-F]{32}$"},`

// Register adds the recipes of this package to g.
func Register(g *recipe.Registry) {
	g.Register("download", recipe.Recipe{
		Description: "Download a file, verified by its sha256 or md5sum (slapos.recipe.build:download).",
		Schema: `{"additionalProperties":false,"type":"object","required":["url"],"properties":{` + checksums + `
			"destination":{"type":"string","description":"file to write (default: DIR/parts/PART/FILENAME)"},
			"filename":{"type":"string","description":"file name under the part directory (default: the URL's last element)"},
			"mode":{"type":["string","integer"]}
		},"anyOf":[{"required":["sha256"]},{"required":["md5sum"]}]}`,
		Outputs: []string{"location", "target"},
		Install: download,
	})
	g.Register("download-unpacked", recipe.Recipe{
		Description: "Download and unpack an archive (tar, tar.gz, tar.bz2, zip; tar.xz/zst through the host's tar) (slapos.recipe.build:download-unpacked).",
		Schema: `{"additionalProperties":false,"type":"object","required":["url"],"properties":{` + checksums + `
			"destination":{"type":"string","description":"directory to unpack into (default: DIR/parts/PART)"},
			"strip-top-level-dir":{"type":["boolean","string"],"description":"true, false, or auto (default): strip when the archive holds a single directory"}
		},"anyOf":[{"required":["sha256"]},{"required":["md5sum"]}]}`,
		Outputs: []string{"location"},
		Install: downloadUnpacked,
	})
}

// Fetch downloads the url option through the host's cache, verified by the
// sha256 or md5sum option, and returns the cached (read-only) path. A local
// path is resolved against the profile directory.
func Fetch(ctx recipe.Context, opts recipe.Options) (string, error) {
	u, err := opts.String("url")
	if err != nil {
		return "", err
	}
	sha, err := opts.StringOr("sha256", "")
	if err != nil {
		return "", err
	}
	md5sum, err := opts.StringOr("md5sum", "")
	if err != nil {
		return "", err
	}
	if sha == "" && md5sum == "" {
		return "", fmt.Errorf("download %s: set sha256 (or md5sum) so the file can be verified", u)
	}
	if !strings.Contains(u, "://") {
		u = fsx.ResolveProfile(ctx, u)
	}
	d, err := ctx.DownloadFile(u, sha, md5sum)
	if err != nil {
		return "", err
	}
	return d.Path, nil
}

// baseName is the file name a URL designates.
func baseName(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Path != "" {
		raw = u.Path
	}
	return path.Base(raw)
}

func download(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	cached, err := Fetch(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	u, _ := opts.String("url")
	var target, location string
	var installed []string
	if opts.Has("destination") {
		d, err := opts.String("destination")
		if err != nil {
			return recipe.Result{}, err
		}
		target = fsx.Resolve(ctx, d)
		location = filepath.Dir(target)
		installed = []string{target}
	} else {
		name, err := opts.StringOr("filename", baseName(u))
		if err != nil {
			return recipe.Result{}, err
		}
		// A filename may be a relative path, as buildout.hash.cfg's
		// filename = templates/x.in is (slapos.recipe.build joins it to
		// the part directory): it stays inside that directory.
		clean := path.Clean(name)
		if name == "" || clean == "." || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return recipe.Result{}, fmt.Errorf("cannot name the file from %q (filename %q): set filename to a name or relative path inside the part, or destination", u, name)
		}
		location = fsx.PartDir(ctx)
		target = filepath.Join(location, filepath.FromSlash(clean))
		installed = []string{location}
	}
	mode, err := opts.Mode("mode", 0o644)
	if err != nil {
		return recipe.Result{}, err
	}
	if err := files.CopyFile(ctx, cached, target, mode); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{
		Outputs:   map[string]any{"location": location, "target": target},
		Installed: installed,
		Messages:  []string{fmt.Sprintf("downloaded %s to %s", u, target)},
	}, nil
}

func downloadUnpacked(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	cached, err := Fetch(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	dest := fsx.PartDir(ctx)
	if opts.Has("destination") {
		d, err := opts.String("destination")
		if err != nil {
			return recipe.Result{}, err
		}
		dest = fsx.Resolve(ctx, d)
	}
	if dest == ctx.Dir() {
		return recipe.Result{}, errors.New("destination is the partition or software directory itself: unpack into a subdirectory, it is replaced on every install")
	}
	strip, err := StripOption(opts)
	if err != nil {
		return recipe.Result{}, err
	}
	if err := archive.Unpack(ctx, cached, dest, archive.Options{Strip: strip}); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{
		Outputs:   map[string]any{"location": dest},
		Installed: []string{dest},
	}, nil
}

// StripOption reads strip-top-level-dir as "true", "false" or "" (auto).
func StripOption(opts recipe.Options) (string, error) {
	if !opts.Has("strip-top-level-dir") {
		return "", nil
	}
	if s, ok := opts["strip-top-level-dir"].(string); ok && strings.EqualFold(strings.TrimSpace(s), "auto") {
		return "", nil
	}
	b, err := opts.Bool("strip-top-level-dir", false)
	if err != nil {
		return "", err
	}
	if b {
		return "true", nil
	}
	return "false", nil
}
