package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/node/bincache"
	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/runtime/builtin"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

func init() {
	register(&command{
		name:    "cache ls",
		summary: "list the download cache, or a release's entries in the binary cache",
		usage: `Usage: slapnode cache ls [--root DIR] [--release PROFILE] [--json]

Without --release: lists the node's download cache (<root>/cache/download), a
content-addressed store shared by every partition: sha256, size, last use and
the md5 names that lead to each file.

With --release PROFILE: lists the entries of that software release in the
binary cache configured in <root>/cache.hcl, each with its platform, builder,
signing key, and whether this node would use it (and if not, why).

Examples:
  slapnode cache ls
  slapnode cache ls --release examples/helloweb/software.hcl
`,
		run: runCacheLs,
	})
	register(&command{
		name:    "cache gc",
		summary: "remove old, excess or corrupted files from the download cache",
		usage: `Usage: slapnode cache gc [--root DIR] [--max-age D] [--max-size SIZE] [--verify] [--dry-run] [--json]

Removes from the node's download cache the files not used for --max-age,
then the least recently used ones until the cache fits in --max-size; with
--verify, every file is hashed again and those whose content no longer
matches their sha256 are removed (they are downloaded again when needed).
Leftovers of interrupted downloads older than a day go too.

Flags:
  --max-age D      e.g. 720h (default: no age limit)
  --max-size SIZE  e.g. 10GiB (default: no size limit)
  --verify         rehash every file
  --dry-run        say what would be removed, remove nothing
  --json           print what was removed as JSON

Example:
  slapnode cache gc --max-age 720h --max-size 20GiB --verify
`,
		run: runCacheGC,
	})
	register(&command{
		name:    "cache serve",
		summary: "serve a binary cache over HTTP (storage on disk)",
		usage: `Usage: slapnode cache serve --dir DIR [--listen ADDR] [--upload-key FILE.pub]... [--read-only]
                           [--anonymous-uploads] [--max-upload SIZE] [--log-format F]

Serves the binary cache stored in DIR (archives under DIR/shacache, signed
entries under DIR/shadir) to nodes whose cache.hcl names http://ADDR.
Downloads are open: nodes verify signatures and checksums themselves.
Uploads must hash to their name and be well-formed signed entries, and only
the --upload-key keys may upload (their requests are signed). Without any
--upload-key the cache refuses uploads, unless --anonymous-uploads accepts
anyone's (content-checked, each archive at most --max-upload).

Flags:
  --dir DIR            storage directory (created if missing)
  --listen ADDR        address to listen on (default 127.0.0.1:8750)
  --upload-key FILE    a public key (from 'slapnode cache keygen') allowed to upload (repeatable)
  --read-only          refuse every upload
  --anonymous-uploads  accept uploads from anyone when no --upload-key is given
  --max-upload SIZE    largest archive accepted (default 4GiB; e.g. 512MiB)
  --log-format F       auto (default), text, plain, journal or json (docs/services.md §Logs)
  --log-level L        debug, info (default), warn or error

Example:
  slapnode cache serve --dir /srv/slapnode-cache --listen 0.0.0.0:8750 --upload-key builder.pub
`,
		run: runCacheServe,
	})
	register(&command{
		name:    "cache push",
		summary: "upload an installed software release to the binary cache",
		usage: `Usage: slapnode cache push PROFILE [--root DIR] [--json]

Archives the installed software directory of PROFILE (it must be completely
installed, from this very profile content) and uploads it to the binary cache
of <root>/cache.hcl with an entry signed by its signing_key. Nodes that trust
that key and run the same platform then unpack it instead of building.

<root>/cache.hcl:
  binary_cache {
    url          = "http://cache.example.net:8750"   # or a directory
    trusted_keys = ["builder.pub"]                   # paths relative to the file, or "ed25519-public:…"
    signing_key  = "builder.key"                     # needed to push
    upload_blacklist   = []                          # URL prefixes never uploaded
    download_blacklist = []                          # URL prefixes never downloaded
    force              = []                          # URL prefixes only ever installed from the cache
  }

Example:
  slapnode apply examples/helloweb/software.hcl && slapnode cache push examples/helloweb/software.hcl
`,
		run: runCachePush,
	})
	register(&command{
		name:    "cache keygen",
		summary: "create an ed25519 key pair to sign binary cache entries",
		usage: `Usage: slapnode cache keygen --out PREFIX [--json]

Writes PREFIX.key (the private key, mode 0600: keep it on the builders) and
PREFIX.pub (the public key: list it in the trusted_keys of every node, and in
'cache serve --upload-key'). Existing files are never overwritten.

Example:
  slapnode cache keygen --out /etc/slapnode/builder
`,
		run: runCacheKeygen,
	})
	register(&command{
		name:    "cache compile",
		summary: "compile the built-in WebAssembly modules into a compilation cache (at build or install time)",
		usage: `Usage: slapnode cache compile [--dir DIR] [--json]

Compiles the built-in modules (the cookbook) to machine code once, so that
no node compiles them at its first apply (3 s of CPU for the cookbook).

Without --dir: into this machine's compilation cache, shared by every node
root of the machine and user ($SLAPNODE_WASM_CACHE, else
/var/cache/slapnode/wazero for root, else ~/.cache/slapnode/wazero).

With --dir DIR: into an install-time cache, readable by every user (mode
0755/0644). slapnode reads the one at ../lib/slapnode/wazero from its own
executable (/usr/bin/slapnode reads /usr/lib/slapnode/wazero), never
writes to it, and ignores it (with a note) unless it and every directory
above it belong to root or to the caller and nobody else can write them.
'make build' prepares lib/slapnode/wazero beside bin/, 'make install' the
one beside the installed binary. Entries are specific to this slapnode's
wazero version and to the CPU features of the machine that compiled them:
a machine with other features compiles as if there were none.

Flags:
  --dir DIR  compilation cache to fill (created if missing)
  --json     print what was compiled as JSON

Examples:
  slapnode cache compile
  slapnode cache compile --dir /usr/lib/slapnode/wazero
`,
		run: runCacheCompile,
	})
}

func runCacheCompile(env *cliEnv, args []string) error {
	fs := newFlags("cache compile")
	dir := fs.String("dir", "", "compilation cache directory")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, errors.New("cache compile takes no arguments; use --dir DIR for an install-time cache"))
	}
	shared := *dir != ""
	if !shared {
		if *dir, err = wasmhost.MachineCacheDir(); err != nil {
			return err
		}
	}
	names := builtin.Names()
	if len(names) == 0 {
		return errors.New("this slapnode binary has no built-in modules to compile: it was built without them (run 'make build')")
	}
	mods := make([][]byte, len(names))
	for i, n := range names {
		if mods[i], err = builtin.ModuleInPlace(n); err != nil {
			return err
		}
	}
	done := env.step("compiling " + strings.Join(names, ", "))
	start := time.Now()
	res, err := wasmhost.Precompile(context.Background(), *dir, shared, names, mods)
	done()
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(*dir)
	if *asJSON {
		doc := jsonCacheCompile{Dir: abs, Modules: []jsonCompiledModule{}}
		for _, r := range res {
			doc.Modules = append(doc.Modules, jsonCompiledModule{Name: r.Name, SHA256: r.Digest, Compiled: r.Compiled, Entry: r.Entry, Bytes: r.Bytes})
		}
		return env.writeJSON(doc)
	}
	for _, r := range res {
		if r.Compiled {
			fmt.Fprintf(env.stdout, "compiled %s (sha256 %.12s) into %s (%s) in %s\n", r.Name, r.Digest, r.Entry, cacheSizeString(r.Bytes), time.Since(start).Round(10*time.Millisecond))
		} else {
			fmt.Fprintf(env.stdout, "%s (sha256 %.12s) was compiled in %s already\n", r.Name, r.Digest, abs)
		}
	}
	return nil
}

// jsonCacheCompile is cache compile --json.
type jsonCacheCompile struct {
	Dir     string               `json:"dir"`
	Modules []jsonCompiledModule `json:"modules"`
}

type jsonCompiledModule struct {
	Name     string `json:"name"`
	SHA256   string `json:"sha256"`
	Compiled bool   `json:"compiled"`        // false: found compiled
	Entry    string `json:"entry,omitempty"` // the file written
	Bytes    int64  `json:"bytes,omitempty"`
}

func runCacheLs(env *cliEnv, args []string) error {
	fs := newFlags("cache ls")
	root := rootFlag(fs)
	rel := fs.String("release", "", "software profile")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, errors.New("cache ls takes no arguments; use --release PROFILE for the binary cache"))
	}
	if *rel != "" {
		return cacheLsBinary(env, *root, *rel, *asJSON)
	}
	entries, err := wasmhost.ListDownloadCache(filepath.Join(*root, "cache", "download"))
	if err != nil {
		return err
	}
	if *asJSON {
		doc := jsonDownloadCache{Dir: filepath.Join(*root, "cache", "download"), Files: cacheFilesJSON(entries)}
		for _, e := range entries {
			doc.TotalBytes += e.Size
		}
		return env.writeJSON(jsonCacheLs{DownloadCache: &doc})
	}
	var total int64
	for _, e := range entries {
		total += e.Size
		md5 := ""
		if len(e.MD5) > 0 {
			md5 = "  md5 " + strings.Join(e.MD5, ",")
		}
		fmt.Fprintf(env.stdout, "%s  %10s  %s%s\n", e.SHA256, cacheSizeString(e.Size), e.Used.Format("2006-01-02 15:04"), md5)
	}
	fmt.Fprintf(env.stdout, "%d file(s), %s in %s\n", len(entries), cacheSizeString(total), filepath.Join(*root, "cache", "download"))
	return nil
}

// jsonCacheFile is a file of the download cache.
type jsonCacheFile struct {
	SHA256 string     `json:"sha256"`
	Path   string     `json:"path"`
	Bytes  int64      `json:"bytes"`
	Used   *time.Time `json:"used,omitempty"`
	MD5    []string   `json:"md5"` // md5 names that lead to it
}

func cacheFilesJSON(l []wasmhost.CacheEntry) []jsonCacheFile {
	out := []jsonCacheFile{}
	for _, e := range l {
		out = append(out, jsonCacheFile{SHA256: e.SHA256, Path: e.Path, Bytes: e.Size, Used: jsonTime(e.Used), MD5: nonNil(e.MD5)})
	}
	return out
}

// jsonCacheLs is cache ls --json: the download cache, or with --release
// the binary cache's entries of a release.
type jsonCacheLs struct {
	DownloadCache *jsonDownloadCache `json:"download_cache,omitempty"`
	BinaryCache   *jsonCacheRelease  `json:"binary_cache,omitempty"`
}

type jsonDownloadCache struct {
	Dir        string          `json:"dir"`
	Files      []jsonCacheFile `json:"files"`
	TotalBytes int64           `json:"total_bytes"`
}

// jsonCacheRelease is the binary cache's entries of a release.
type jsonCacheRelease struct {
	Release string                  `json:"release"`
	Key     string                  `json:"key"`
	Entries []jsonCacheReleaseEntry `json:"entries"`
}

type jsonCacheReleaseEntry struct {
	// Entry is left out when the entry could not be read (Problem says why).
	Entry   *bincache.Entry `json:"entry,omitempty"`
	KeyID   string          `json:"key_id"`
	Trusted bool            `json:"trusted"`
	Usable  bool            `json:"usable"`
	Problem string          `json:"problem,omitempty"`
}

// cacheClient opens the binary cache of a node root.
func cacheClient(root string) (*bincache.Client, error) {
	cfg, err := bincache.LoadConfig(root)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("no binary cache configured: write %s (see 'slapnode help cache push')", filepath.Join(root, bincache.ConfigFile))
	}
	return bincache.New(*cfg)
}

// loadRelease loads a software profile for its identity: URL, digest and
// software directory on this node.
func cacheReleaseOf(root, path string) (url, digest, dir string, err error) {
	url, err = partition.SoftwareURL(path)
	if err != nil {
		return "", "", "", err
	}
	p, diags := profile.Load(url, profile.Software)
	if err := p.Err(diags); err != nil {
		return "", "", "", err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", "", "", err
	}
	return url, p.Digest, local.SoftwareDir(abs, url), nil
}

func cacheLsBinary(env *cliEnv, root, rel string, asJSON bool) error {
	c, err := cacheClient(root)
	if err != nil {
		return err
	}
	url, digest, dir, err := cacheReleaseOf(root, rel)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	list, err := c.List(ctx, url, digest, dir)
	if err != nil {
		return err
	}
	if asJSON {
		doc := jsonCacheRelease{Release: url, Key: bincache.Key(url), Entries: []jsonCacheReleaseEntry{}}
		for _, l := range list {
			doc.Entries = append(doc.Entries, jsonCacheReleaseEntry{Entry: l.Entry, KeyID: l.KeyID, Trusted: l.Trusted,
				Usable: l.Entry != nil && l.Problem == "", Problem: l.Problem})
		}
		return env.writeJSON(jsonCacheLs{BinaryCache: &doc})
	}
	fmt.Fprintf(env.stdout, "release %s (key %s)\n", url, bincache.Key(url))
	for _, l := range list {
		if l.Entry == nil {
			fmt.Fprintf(env.stdout, "  ?  %s\n", l.Problem)
			continue
		}
		status := "usable"
		if l.Problem != "" {
			status = "skipped: " + l.Problem
		}
		e := l.Entry
		fmt.Fprintf(env.stdout, "  %s  %s  %s  built by %s at %s  key %s  %s\n", e.ArchiveSHA256[:12], cacheSizeString(e.ArchiveSize),
			e.Platform, e.Builder, e.Created.Format(time.RFC3339), l.KeyID, status)
	}
	fmt.Fprintf(env.stdout, "%d entr(y/ies)\n", len(list))
	return nil
}

func runCacheGC(env *cliEnv, args []string) error {
	fs := newFlags("cache gc")
	root := rootFlag(fs)
	maxAge := fs.Duration("max-age", 0, "age limit")
	maxSize := fs.String("max-size", "", "size limit")
	verify := fs.Bool("verify", false, "rehash")
	dry := fs.Bool("dry-run", false, "remove nothing")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	o := wasmhost.GCOptions{MaxAge: *maxAge, Verify: *verify, DryRun: *dry}
	if *maxSize != "" {
		n, err := profile.ParseSize(*maxSize)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("--max-size: %w", err))
		}
		o.MaxBytes = int64(n)
	}
	done := env.step("cleaning the download cache")
	rep, err := wasmhost.GCDownloadCache(filepath.Join(*root, "cache", "download"), o)
	done()
	if err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(jsonCacheGC{DryRun: *dry, Removed: cacheFilesJSON(rep.Removed), Corrupted: cacheFilesJSON(rep.Corrupted),
			Kept: len(rep.Kept), FreedBytes: rep.FreedBytes, StaleTemporary: rep.StaleTemp})
	}
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	for _, e := range rep.Corrupted {
		fmt.Fprintf(env.stdout, "%s %s (corrupted: its content no longer matches its sha256)\n", verb, e.SHA256)
	}
	for _, e := range rep.Removed {
		fmt.Fprintf(env.stdout, "%s %s (%s, last used %s)\n", verb, e.SHA256, cacheSizeString(e.Size), e.Used.Format("2006-01-02"))
	}
	fmt.Fprintf(env.stdout, "%s %d file(s), %s; kept %d; %d stale temporary file(s)\n", verb,
		len(rep.Removed)+len(rep.Corrupted), cacheSizeString(rep.FreedBytes), len(rep.Kept), rep.StaleTemp)
	return nil
}

// jsonCacheGC is cache gc --json.
type jsonCacheGC struct {
	DryRun    bool            `json:"dry_run"`
	Removed   []jsonCacheFile `json:"removed"`   // too old or over the size limit
	Corrupted []jsonCacheFile `json:"corrupted"` // content no longer matching its sha256
	Kept      int             `json:"kept"`
	// FreedBytes is what was (or, dry, would be) freed.
	FreedBytes     int64 `json:"freed_bytes"`
	StaleTemporary int   `json:"stale_temporary_files"`
}

func runCacheServe(env *cliEnv, args []string) error {
	fs := newFlags("cache serve")
	dir := fs.String("dir", "", "storage directory")
	listen := fs.String("listen", "127.0.0.1:8750", "listen address")
	var keys stringList
	fs.Var(&keys, "upload-key", "public key allowed to upload")
	readOnly := fs.Bool("read-only", false, "refuse uploads")
	anonymous := fs.Bool("anonymous-uploads", false, "accept uploads from anyone")
	maxUpload := fs.String("max-upload", "4GiB", "largest archive accepted")
	var lf logFlags
	lf.define(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := lf.logger(env)
	if err != nil {
		return err
	}
	if *dir == "" {
		return withCode(exitUsage, errors.New("give the storage directory: --dir DIR"))
	}
	limit, err := humanize.ParseBytes(*maxUpload)
	if err != nil || limit == 0 || limit > 1<<50 {
		return withCode(exitUsage, fmt.Errorf("--max-upload %q: give a size such as 512MiB or 4GiB", *maxUpload))
	}
	if *anonymous && len(keys) > 0 {
		return withCode(exitUsage, errors.New("--anonymous-uploads and --upload-key exclude each other: with upload keys only their holders upload"))
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	srv := &bincache.Server{Store: &bincache.DirStore{Dir: *dir}, ReadOnly: *readOnly,
		AnonymousUploads: *anonymous, MaxArchive: int64(limit),
		Logger: logger}
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("--upload-key: %w", err)
		}
		pub, err := bincache.ParsePublicKey(string(b))
		if err != nil {
			return fmt.Errorf("--upload-key %s: %w", k, err)
		}
		srv.UploadKeys = append(srv.UploadKeys, pub)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		hs.Shutdown(sctx)
	}()
	mode := "read-only: no upload key given (--upload-key KEY.pub, or --anonymous-uploads)"
	switch {
	case *readOnly:
		mode = "read-only"
	case len(srv.UploadKeys) > 0:
		mode = fmt.Sprintf("uploads from %d key(s), %s each at most", len(srv.UploadKeys), humanize.IBytes(limit))
	case *anonymous:
		mode = fmt.Sprintf("ANONYMOUS uploads accepted (content-checked), %s each at most", humanize.IBytes(limit))
	}
	fmt.Fprintf(env.stdout, "binary cache %s on http://%s (%s)\n", *dir, ln.Addr(), mode)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// jsonCachePush is cache push --json.
type jsonCachePush struct {
	Release string `json:"release"`
	Pushed  bool   `json:"pushed"`
	Message string `json:"message"`
}

func runCachePush(env *cliEnv, args []string) error {
	fs := newFlags("cache push")
	root := rootFlag(fs)
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, errors.New("give one software profile, e.g. slapnode cache push examples/helloweb/software.hcl"))
	}
	c, err := cacheClient(*root)
	if err != nil {
		return err
	}
	url, digest, dir, err := cacheReleaseOf(*root, pos[0])
	if err != nil {
		return err
	}
	var done struct {
		Digest string `json:"profile_digest"`
	}
	b, err := os.ReadFile(filepath.Join(dir, ".completed"))
	if err != nil || json.Unmarshal(b, &done) != nil {
		return fmt.Errorf("%s is not installed completely in %s: run 'slapnode apply %s' first", pos[0], dir, pos[0])
	}
	if done.Digest != digest {
		return fmt.Errorf("%s changed since it was installed in %s: apply it again before pushing", pos[0], dir)
	}
	ctx, cancel := signalContext()
	defer cancel()
	end := env.step("uploading " + pos[0] + " to the binary cache")
	pushed, why, err := c.Push(ctx, url, digest, dir)
	end()
	if err != nil {
		return err
	}
	already := !pushed && strings.HasPrefix(why, "already in the binary cache")
	if !pushed && !already {
		return fmt.Errorf("not pushed: %s", why)
	}
	if *asJSON {
		return env.writeJSON(jsonCachePush{Release: url, Pushed: pushed, Message: why})
	}
	if already {
		fmt.Fprintln(env.stdout, why)
		return nil
	}
	fmt.Fprintf(env.stdout, "%s: %s\n", pos[0], why)
	return nil
}

func runCacheKeygen(env *cliEnv, args []string) error {
	fs := newFlags("cache keygen")
	out := fs.String("out", "", "file prefix")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return withCode(exitUsage, errors.New("give where to write the keys: --out PREFIX (writes PREFIX.key and PREFIX.pub)"))
	}
	pub, err := bincache.WriteKeyPair(*out)
	if err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(struct {
			PrivateKey string `json:"private_key_file"`
			PublicKey  string `json:"public_key_file"`
			KeyID      string `json:"key_id"`
		}{*out + ".key", *out + ".pub", bincache.KeyID(ed25519.PublicKey(pub))})
	}
	fmt.Fprintf(env.stdout, "wrote %s.key (private, keep it on the builders) and %s.pub (key %s)\n", *out, *out, bincache.KeyID(ed25519.PublicKey(pub)))
	return nil
}

func cacheSizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
