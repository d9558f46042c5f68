// Package files holds the cookbook's filesystem recipes: mkdirectory,
// symlink, copy, write-file and json.
package files

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

const modeSchema = `{"type":["string","integer"],"description":"octal file mode, e.g. \"0644\""}`

// Register adds the recipes of this package to g.
func Register(g *recipe.Registry) {
	g.Register("mkdirectory", recipe.Recipe{
		Description: "Create directories (slapos.cookbook:mkdirectory): every option but mode is a path to create. Directories are kept on uninstall.",
		Schema:      `{"type":"object","properties":{"mode":` + modeSchema + `},"additionalProperties":{"type":"string"}}`,
		Install:     mkdirectory,
	})
	g.Register("symlink", recipe.Recipe{
		Description: "Create symbolic links (slapos.cookbook:symbolic.link, cns.recipe.symlink).",
		Schema: `{"additionalProperties":false,"type":"object","properties":{
			"link":{"type":"string","description":"path of the link to create"},
			"target":{"type":"string","description":"what the link points to"},
			"links":{"type":"object","additionalProperties":{"type":"string"},"description":"link path -> target"},
			"target-directory":{"type":"string","description":"directory receiving links named after each link-binary"},
			"link-binary":{"type":["string","array"],"items":{"type":"string"},"description":"files to link into target-directory"}
		}}`,
		Outputs: []string{"location"},
		Install: symlink,
	})
	g.Register("copy", recipe.Recipe{
		Description: "Copy a file or a directory tree.",
		Schema: `{"additionalProperties":false,"type":"object","required":["source","destination"],"properties":{
			"source":{"type":"string"},"destination":{"type":"string"},"mode":` + modeSchema + `}}`,
		Outputs: []string{"location"},
		Install: copyRecipe,
	})
	g.Register("write-file", recipe.Recipe{
		Description: "Write a file with the given content.",
		Schema: `{"additionalProperties":false,"type":"object","required":["content"],"properties":{
			"output":{"type":"string"},"path":{"type":"string"},"content":{"type":"string"},"mode":` + modeSchema + `},
			"anyOf":[{"required":["output"]},{"required":["path"]}]}`,
		Outputs: []string{"location"},
		Install: writeFile,
	})
	g.Register("json", recipe.Recipe{
		Description: "Write a JSON file from the data option (or from the other options).",
		Schema: `{"additionalProperties":false,"type":"object","properties":{
			"output":{"type":"string"},"path":{"type":"string"},"data":{},"indent":{"type":"integer","minimum":0},"mode":` + modeSchema + `},
			"anyOf":[{"required":["output"]},{"required":["path"]}]}`,
		Outputs: []string{"location"},
		Install: jsonRecipe,
	})
}

// mkdirectory creates every path option. Like SlapOS it returns no
// installed paths: directories usually hold data (databases, logs) that must
// survive the part being changed or removed.
func mkdirectory(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	// SlapOS's mkdirectory: os.makedirs(path, mode), mode 0777 unless
	// given (0755 once group and other write are dropped, as a umask of
	// 022 does).
	mode, err := opts.Mode("mode", 0o777)
	if err != nil {
		return recipe.Result{}, err
	}
	outputs := map[string]any{}
	created := 0
	var skipped []string
	for _, key := range opts.Keys() {
		if key == "mode" {
			continue
		}
		p, err := opts.String(key)
		if err != nil {
			return recipe.Result{}, err
		}
		// An option that is a string already is published as the same
		// value, not boxed again (an allocation each).
		v, isString := opts[key].(string)
		if !strings.HasPrefix(p, "/") {
			// SlapOS profiles give mkdirectory absolute paths
			// (${buildout:directory}/…); a value that is not one (an id, a
			// label a profile keeps in the section) is passed through as an
			// output rather than created as a stray directory.
			if isString {
				outputs[key] = opts[key]
			} else {
				outputs[key] = p
			}
			skipped = append(skipped, key)
			continue
		}
		path := fsx.Resolve(ctx, p)
		n, err := ctx.MkdirAll(path, mode)
		if err != nil {
			return recipe.Result{}, fmt.Errorf("option %q: %w", key, err)
		}
		created += n
		if isString && v == path {
			outputs[key] = opts[key]
		} else {
			outputs[key] = path
		}
	}
	msg := "created " + strconv.Itoa(created) + " directories"
	if created == 1 {
		msg = "created 1 directory"
	}
	msgs := []string{msg}
	if len(skipped) > 0 {
		msgs = append(msgs, "not absolute paths, so not created: "+strings.Join(skipped, ", "))
	}
	return recipe.Result{Outputs: outputs, Messages: msgs}, nil
}

func symlink(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	links := map[string]string{} // link -> target
	if opts.Has("link") || opts.Has("target") {
		link, err := opts.String("link")
		if err != nil {
			return recipe.Result{}, err
		}
		target, err := opts.String("target")
		if err != nil {
			return recipe.Result{}, err
		}
		links[fsx.Resolve(ctx, link)] = target
	}
	m, err := opts.Map("links")
	if err != nil {
		return recipe.Result{}, err
	}
	for link, target := range m {
		t, ok := target.(string)
		if !ok {
			return recipe.Result{}, fmt.Errorf("option \"links\": the target of %s must be a string", link)
		}
		links[fsx.Resolve(ctx, link)] = t
	}
	bins, err := opts.StringList("link-binary")
	if err != nil {
		return recipe.Result{}, err
	}
	if len(bins) > 0 {
		dir, err := opts.String("target-directory")
		if err != nil {
			return recipe.Result{}, fmt.Errorf("link-binary needs target-directory: %w", err)
		}
		dir = fsx.Resolve(ctx, dir)
		for _, b := range bins {
			links[filepath.Join(dir, filepath.Base(b))] = b
		}
	}
	if len(links) == 0 {
		return recipe.Result{}, errors.New("nothing to link: set link and target, links, or target-directory and link-binary")
	}
	var installed []string
	for _, link := range fsx.SortedKeys(links) {
		if err := makeLink(ctx, link, links[link]); err != nil {
			return recipe.Result{}, err
		}
		installed = append(installed, link)
	}
	out := map[string]any{"location": installed[0], "links": installed}
	return recipe.Result{Outputs: out, Installed: installed}, nil
}

// makeLink points link at target, replacing an earlier link. An absolute
// target is made relative to the link's directory: the sandbox refuses
// absolute symlink targets (docs/wasm-abi.md §7), and a relative link stays
// valid if the whole tree moves.
func makeLink(ctx recipe.Context, link, target string) error {
	abs := ""
	if filepath.IsAbs(target) {
		abs = target
		if rel, err := filepath.Rel(filepath.Dir(link), target); err == nil {
			target = rel
		}
	}
	if st, err := os.Lstat(link); err == nil {
		if st.Mode()&fs.ModeSymlink == 0 {
			return fmt.Errorf("%s exists and is not a symbolic link: remove it or choose another link path", link)
		}
		if err := os.Remove(link); err != nil {
			return fmt.Errorf("replacing link %s: %w", link, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", link, err)
	}
	if err := os.Symlink(target, link); err != nil {
		if abs == "" || !strings.HasPrefix(target, "..") {
			return fmt.Errorf("linking %s -> %s: %w (the sandbox refuses links that leave the directory tree they are made in)", link, target, err)
		}
		// A link from the partition to the software (SlapOS's
		// link-binary = ${part:location}/bin/x): the sandbox cannot make
		// it, the host's ln can, as the partition's user, who may make
		// such a link in its own directory anyway.
		r, xerr := ctx.Exec([]string{"ln", "-s", abs, link}, filepath.Dir(link), nil, time.Minute)
		if xerr == nil && r.ExitCode != 0 {
			xerr = fmt.Errorf("ln exited %d: %s", r.ExitCode, strings.TrimSpace(r.Output))
		}
		if xerr != nil {
			return fmt.Errorf("linking %s -> %s: the sandbox refuses links that leave the directory tree they are made in, and the host's ln could not make it (%v): grant it with allow_exec = [\"ln\"] in the cookbook's module block", link, abs, xerr)
		}
		ctx.LogLevel(recipe.Debug, "linked %s -> %s with ln", link, abs)
		return nil
	}
	ctx.LogLevel(recipe.Debug, "linked %s -> %s", link, target)
	return nil
}

func copyRecipe(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	src, err := opts.String("source")
	if err != nil {
		return recipe.Result{}, err
	}
	dst, err := opts.String("destination")
	if err != nil {
		return recipe.Result{}, err
	}
	src, dst = fsx.Resolve(ctx, src), fsx.Resolve(ctx, dst)
	var mode os.FileMode
	if opts.Has("mode") {
		if mode, err = opts.Mode("mode", 0); err != nil {
			return recipe.Result{}, err
		}
	}
	st, err := os.Stat(src)
	if err != nil {
		return recipe.Result{}, fmt.Errorf("source: %w", err)
	}
	if st.IsDir() {
		if err := os.RemoveAll(dst); err != nil {
			return recipe.Result{}, fmt.Errorf("replacing %s: %w", dst, err)
		}
		err = CopyTree(ctx, src, dst)
	} else {
		if mode == 0 {
			mode = st.Mode().Perm()
		}
		err = CopyFile(ctx, src, dst, mode)
	}
	if err != nil {
		return recipe.Result{}, err
	}
	if st.IsDir() && mode != 0 {
		if err := os.Chmod(dst, mode); err != nil {
			return recipe.Result{}, err
		}
	}
	return recipe.Result{Outputs: map[string]any{"location": dst}, Installed: []string{dst}}, nil
}

// CopyFile copies the regular file src to dst with mode.
func CopyFile(ctx recipe.Context, src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	return fsx.WriteFile(ctx, dst, data, mode)
}

// CopyTree copies the directory src to dst (which must not exist), keeping
// symbolic links and file modes (execute bits through fsx.SetMode).
func CopyTree(ctx recipe.Context, src, dst string) error {
	modes := map[os.FileMode][]string{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, data, 0o600); err != nil {
				return err
			}
			modes[info.Mode().Perm()] = append(modes[info.Mode().Perm()], target)
			return nil
		}
		return fmt.Errorf("copying %s: not a regular file, directory or symbolic link", p)
	})
	if err != nil {
		return err
	}
	for _, m := range sortedModes(modes) {
		if err := fsx.SetMode(ctx, m, modes[m]...); err != nil {
			return err
		}
	}
	return nil
}

func sortedModes(m map[os.FileMode][]string) []os.FileMode {
	out := make([]os.FileMode, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func outputPath(ctx recipe.Context, opts recipe.Options) (string, error) {
	key := "output"
	if !opts.Has(key) && opts.Has("path") {
		key = "path"
	}
	p, err := opts.String(key)
	if err != nil {
		return "", err
	}
	return fsx.Resolve(ctx, p), nil
}

func writeFile(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	out, err := outputPath(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	content, err := opts.String("content")
	if err != nil {
		return recipe.Result{}, err
	}
	mode, err := opts.Mode("mode", 0o644)
	if err != nil {
		return recipe.Result{}, err
	}
	if err := fsx.WriteFile(ctx, out, []byte(content), mode); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": out}, Installed: []string{out}}, nil
}

func jsonRecipe(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	out, err := outputPath(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	mode, err := opts.Mode("mode", 0o644)
	if err != nil {
		return recipe.Result{}, err
	}
	indent, err := opts.Int("indent", 2)
	if err != nil {
		return recipe.Result{}, err
	}
	var data any
	if opts.Has("data") {
		data = opts["data"]
	} else {
		m := map[string]any{}
		for k, v := range opts {
			switch k {
			case "output", "path", "mode", "indent":
			default:
				m[k] = v
			}
		}
		data = m
	}
	var b []byte
	if indent > 0 {
		b, err = json.MarshalIndent(data, "", strings.Repeat(" ", int(indent)))
	} else {
		b, err = json.Marshal(data)
	}
	if err != nil {
		return recipe.Result{}, fmt.Errorf("encoding %s: %w", out, err)
	}
	if err := fsx.WriteFile(ctx, out, append(b, '\n'), mode); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": out}, Installed: []string{out}}, nil
}
