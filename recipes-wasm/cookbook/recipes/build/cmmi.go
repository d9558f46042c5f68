package build

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/archive"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/pyshim"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/recipes/download"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// cmmi follows slapos.recipe.cmmi 0.23 (the version SlapOS pins):
//
//   - every step is a shell command run by `sh -e -c` in the source tree,
//     after Python %-formatting with the part's options (%(location)s,
//     %(prefix)s…; %% is a literal %);
//   - the steps: patches, pre-configure-hook, pre-configure, configure,
//     pre-make-hook, pre-build, make, pre-install, make install,
//     post-make-hook, post-install;
//   - an empty configure-command means ./configure, given
//     --prefix="PREFIX" unless configure-options already name a prefix; with
//     another configure-command, `make install` gets prefix="PREFIX";
//   - location is emptied first; an archive (url) is unpacked into
//     LOCATION/.build and removed after a successful build unless
//     keep-compile-dir; a source tree given by path is built in place;
//   - hooks are FILE[#MD5]:FUNCTION Python functions called with (options,
//     buildout, environ): run with the host's python3 (internal/pyshim).
func registerCMMI(g *recipe.Registry) {
	g.Register("cmmi", recipe.Recipe{
		Description: "Configure, make, make install a source archive or directory (slapos.recipe.cmmi).",
		Schema: `{"type":"object","properties":{` + common + `
			"url":{"type":"string","description":"source archive (http(s), file:// or a profile path)"},
			"sha256":{"type":"string"},"md5sum":{"type":"string"},
			"path":{"type":"string","description":"an unpacked source directory, instead of url; built in place"},
			"prefix":{"type":"string","description":"installation prefix (default: location); @@LOCATION@@ is the location"},
			"configure-command":{"type":"string","description":"default (or empty): ./configure --prefix=PREFIX"},
			"configure-options":{"type":["string","array"],"items":{"type":"string"}},
			"make-binary":{"type":"string","description":"default make"},
			"make-options":{"type":["string","array"],"items":{"type":"string"}},
			"make-targets":{"type":["string","array"],"items":{"type":"string"},"description":"default install"},
			"pre-configure":{"type":"string","description":"shell commands run in the source tree before configure"},
			"pre-build":{"type":"string","description":"shell commands run before make"},
			"pre-install":{"type":"string","description":"shell commands run before make install"},
			"post-install":{"type":"string","description":"shell commands run after make install"},
			"pre-configure-hook":{"type":"string","description":"FILE[#MD5]:FUNCTION, a Python function run before pre-configure"},
			"pre-make-hook":{"type":"string","description":"FILE[#MD5]:FUNCTION run before pre-build"},
			"post-make-hook":{"type":"string","description":"FILE[#MD5]:FUNCTION run after make install"},
			"patches":{"type":["string","array"],"items":{"type":"string"},"description":"patch files: profile paths or URLs, each FILE#MD5SUM"},
			"patch-options":{"type":"string","description":"default -p0"},
			"patch-binary":{"type":"string","description":"default patch"},
			"promises":{"type":["string","array"],"items":{"type":"string"},"description":"paths that must exist after the build (a warning otherwise)"},
			"buildout":{"type":"object","additionalProperties":{"type":"object"},"description":"sections the hooks read as buildout[NAME]"},
			"strip-top-level-dir":{"type":["boolean","string"]},
			"keep-compile-dir":{"type":["boolean","string"]}
		},"oneOf":[{"required":["url"]},{"required":["path"]}]}`,
		Outputs: []string{"location", "prefix", "compile-directory"},
		Install: cmmi,
	})
}

// cmmiRun is one build: its options as buildout strings (for
// %-formatting and the hooks), its runner and where it stands.
type cmmiRun struct {
	ctx      recipe.Context
	opts     recipe.Options
	strs     map[string]string
	r        *runner
	location string
}

func cmmi(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	loc, err := location(ctx, opts)
	if err != nil {
		return recipe.Result{}, err
	}
	strs := pyshim.Strings(opts, "buildout", "timeout", "environment")
	for k, v := range strs {
		strs[k] = strings.ReplaceAll(v, "@@LOCATION@@", loc)
	}
	strs["location"] = loc
	prefix := loc
	if p := strs["prefix"]; p != "" {
		prefix = fsx.Resolve(ctx, p)
	}
	strs["prefix"] = prefix
	r, err := newRunner(ctx, opts, loc)
	if err != nil {
		return recipe.Result{}, err
	}
	c := &cmmiRun{ctx: ctx, opts: opts, strs: strs, r: r, location: loc}

	// The location is the part's: emptied first, as buildout uninstalls a
	// part before installing it again.
	if err := os.RemoveAll(loc); err != nil {
		return recipe.Result{}, fmt.Errorf("emptying location: %w", err)
	}
	if err := fsx.MkdirAll(ctx, loc); err != nil {
		return recipe.Result{}, err
	}
	url, src := strs["url"], ""
	if url != "" {
		src = filepath.Join(loc, ".build")
		archiveFile, err := download.Fetch(ctx, opts)
		if err != nil {
			return recipe.Result{}, err
		}
		strip, err := download.StripOption(opts)
		if err != nil {
			return recipe.Result{}, err
		}
		if err := archive.Unpack(ctx, archiveFile, src, archive.Options{Strip: strip}); err != nil {
			return recipe.Result{}, err
		}
	} else {
		src = fsx.ResolveProfile(ctx, strs["path"])
		if st, err := os.Stat(src); err != nil || !st.IsDir() {
			return recipe.Result{}, fmt.Errorf("option \"path\": %s is not a source directory", src)
		}
		ctx.Log("using the local source directory %s", src)
	}
	strs["compile-directory"] = src
	// Packages that unpack into a single directory are built inside it.
	work := src
	if entries, err := os.ReadDir(src); err == nil && len(entries) == 1 && entries[0].IsDir() {
		work = filepath.Join(src, entries[0].Name())
	}
	if err := c.build(work); err != nil {
		if url != "" {
			err = fmt.Errorf("%w\n(the source tree is left in %s for inspection)", err, work)
		}
		return recipe.Result{Messages: r.msgs}, err
	}
	keep, err := opts.Bool("keep-compile-dir", false)
	if err != nil {
		return recipe.Result{}, err
	}
	if url != "" && !keep {
		if err := os.RemoveAll(src); err != nil {
			return recipe.Result{}, err
		}
	}
	c.checkPromises()
	if err := fixShebangs(ctx, loc); err != nil {
		return recipe.Result{}, err
	}
	// Only the location is the part's: a prefix elsewhere (say the software
	// directory) is shared and not removed on uninstall.
	return recipe.Result{
		Outputs:   map[string]any{"location": loc, "prefix": prefix, "compile-directory": src},
		Installed: []string{loc},
		Messages:  r.msgs,
	}, nil
}

// build runs the steps in the source tree work.
func (c *cmmiRun) build(work string) error {
	s := c.strs
	words := func(key, def string) string {
		v, ok := s[key]
		if !ok {
			v = def
		}
		return strings.Join(strings.Fields(v), " ")
	}
	makeCmd := strings.TrimSpace(valueOr(s, "make-binary", "make"))
	makeOptions := words("make-options", "")
	makeTargets := words("make-targets", "install")
	configureOptions := strings.Fields(s["configure-options"])
	configureCmd := strings.TrimSpace(s["configure-command"])
	if configureCmd == "" {
		configureCmd = "./configure"
		if !strings.Contains(strings.Join(configureOptions, " "), "--prefix") {
			configureOptions = append([]string{`--prefix="` + s["prefix"] + `"`}, configureOptions...)
		}
	} else if makeCmd == "make" && makeTargets == "install" {
		makeTargets += ` prefix="` + s["prefix"] + `"`
	}
	format := func(what, cmd string) (string, error) {
		out, err := PyFormat(cmd, s)
		if err != nil {
			return "", fmt.Errorf("%s %q: %w", what, cmd, err)
		}
		return out, nil
	}
	configure, err := format("configure command", configureCmd+" "+strings.Join(configureOptions, " "))
	if err != nil {
		return err
	}
	install, err := format("install command", makeCmd+" "+makeOptions+" "+makeTargets)
	if err != nil {
		return err
	}
	make, err := format("make command", makeCmd+" "+makeOptions)
	if err != nil {
		return err
	}
	step := func(name string) error {
		cmd := strings.TrimSpace(s[name])
		if cmd == "" {
			return nil
		}
		cmd, err := format(name, cmd)
		if err != nil {
			return err
		}
		c.ctx.Log("executing %s", name)
		if err := c.r.sh(cmd, work); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	run := func(what, cmd string) error {
		if err := c.r.sh(cmd, work); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if err := c.patch(work); err != nil {
		return err
	}
	if err := c.hook("pre-configure-hook", work); err != nil {
		return err
	}
	if err := step("pre-configure"); err != nil {
		return err
	}
	if err := run("configure", configure); err != nil {
		return err
	}
	if err := c.hook("pre-make-hook", work); err != nil {
		return err
	}
	if err := step("pre-build"); err != nil {
		return err
	}
	if err := run("make", make); err != nil {
		return err
	}
	if err := step("pre-install"); err != nil {
		return err
	}
	if err := run("make install", install); err != nil {
		return err
	}
	if err := c.hook("post-make-hook", work); err != nil {
		return err
	}
	return step("post-install")
}

func valueOr(m map[string]string, key, def string) string {
	if v, ok := m[key]; ok {
		return v
	}
	return def
}

// patch applies each patch (FILE or URL, with #MD5SUM) as
// slapos.recipe.cmmi does: `PATCH-BINARY PATCH-OPTIONS < FILE`.
func (c *cmmiRun) patch(work string) error {
	patches := strings.Fields(c.strs["patches"])
	if len(patches) == 0 {
		return nil
	}
	binary := strings.TrimSpace(valueOr(c.strs, "patch-binary", "patch"))
	options := strings.Join(strings.Fields(valueOr(c.strs, "patch-options", "-p0")), " ")
	for _, p := range patches {
		file, err := c.fetch(p)
		if err != nil {
			return fmt.Errorf("patch %s: %w", p, err)
		}
		c.ctx.Log("applying patch %s", p)
		if err := c.r.sh(binary+" "+options+" < "+fsx.ShellQuote(file), work); err != nil {
			return fmt.Errorf("patch %s: %w", p, err)
		}
	}
	return nil
}

// fetch returns a local path for FILE[#MD5SUM]: a URL goes through the
// host's download cache (the md5sum is then required), a profile file is
// read in place and checked against the md5sum when one is given.
func (c *cmmiRun) fetch(ref string) (string, error) {
	u, sum, _ := strings.Cut(ref, "#")
	if strings.Contains(u, "://") && !strings.HasPrefix(u, "file://") {
		if sum == "" {
			return "", fmt.Errorf("a URL needs its md5sum after '#' (URL#MD5SUM)")
		}
		d, err := c.ctx.DownloadFile(u, "", sum)
		if err != nil {
			return "", err
		}
		return d.Path, nil
	}
	path := fsx.ResolveProfile(c.ctx, strings.TrimPrefix(u, "file://"))
	if sum != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		got := md5.Sum(b)
		if !strings.EqualFold(hex.EncodeToString(got[:]), sum) {
			return "", fmt.Errorf("md5sum mismatch for %s: expected %s, got %s", path, sum, hex.EncodeToString(got[:]))
		}
	}
	return path, nil
}

// hook runs a FILE[#MD5]:FUNCTION hook with the host's python3.
func (c *cmmiRun) hook(name, work string) error {
	spec := strings.TrimSpace(c.strs[name])
	if spec == "" {
		return nil
	}
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return fmt.Errorf("%s %q: want FILE[#MD5SUM]:FUNCTION", name, spec)
	}
	file, err := c.fetch(spec[:i])
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, spec, err)
	}
	sections, err := pyshim.Sections(c.opts, "buildout")
	if err != nil {
		return err
	}
	c.ctx.Log("executing %s (%s) with the host's python3", name, spec)
	req := pyshim.Request{Mode: "hook", Name: c.ctx.Part, Options: pyshim.Any(c.strs), Buildout: sections,
		Script: file, Function: spec[i+1:], Environment: c.opts["environment"]}
	if _, err := pyshim.Run(c.ctx, req, work, c.r.env, c.r.timeout); err != nil {
		return fmt.Errorf("%s %s: %w", name, spec, err)
	}
	c.r.msgs = append(c.r.msgs, "ran "+name)
	return nil
}

// checkPromises warns about promised paths that do not exist, as
// slapos.recipe.cmmi does (a warning, not a failure).
func (c *cmmiRun) checkPromises() {
	for _, p := range strings.Split(c.strs["promises"], "\n") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			c.ctx.LogLevel(recipe.Warn, "could not find promise %q", p)
			c.r.msgs = append(c.r.msgs, "warning: could not find promise "+p)
		}
	}
}

// fixShebangs works around the kernel's limit on #! lines, as
// slapos.recipe.cmmi does: a script in bin/ or sbin/ whose first line does
// not end within 128 bytes is renamed NAME.shebang and replaced by a
// /bin/sh launcher reading the interpreter from it.
func fixShebangs(ctx recipe.Context, location string) error {
	const launcher = "#!/bin/sh -e\nread -r EXE ARG < \"$0.shebang\"\nEXE=${EXE#\\#!}\n[ \"$EXE\" ] || read -r _ EXE ARG < \"$0.shebang\"\nexec $EXE ${ARG:+\"$ARG\"} \"$0.shebang\" \"$@\"\n"
	for _, dir := range []string{"bin", "sbin"} {
		d := filepath.Join(location, dir)
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(d, e.Name())
			head, err := readHead(p, 128)
			if err != nil {
				return err
			}
			if !bytes.HasPrefix(head, []byte("#!")) || bytes.IndexByte(head, '\n') >= 0 || len(head) < 128 {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			if err := os.Rename(p, p+".shebang"); err != nil {
				return err
			}
			if err := fsx.WriteFile(ctx, p, []byte(launcher), info.Mode().Perm()|0o111); err != nil {
				return err
			}
		}
	}
	return nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return buf[:m], nil
}

// PyFormat is Python's `text % mapping` for the forms buildout profiles
// use: %(NAME)s is the option NAME, %% a literal %. Anything else after a %
// is an error, as in Python.
func PyFormat(text string, vals map[string]string) (string, error) {
	if !strings.Contains(text, "%") {
		return text, nil
	}
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		ch := text[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		if i+1 < len(text) && text[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		if i+1 < len(text) && text[i+1] == '(' {
			j := strings.IndexByte(text[i:], ')')
			if j > 0 && i+j+1 < len(text) && text[i+j+1] == 's' {
				name := text[i+2 : i+j]
				v, ok := vals[name]
				if !ok {
					return "", fmt.Errorf("%%(%s)s: the part has no option %q", name, name)
				}
				b.WriteString(v)
				i += j + 1
				continue
			}
		}
		return "", fmt.Errorf("a %% at byte %d is neither %%%% nor %%(NAME)s (write %%%% for a literal %%)", i+1)
	}
	return b.String(), nil
}
