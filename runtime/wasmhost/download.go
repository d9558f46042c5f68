package wasmhost

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// downloader fills the content-addressed cache <dir>/sha256/ab/abcd…. A file
// is written to <dir>/tmp, verified, then renamed into place, so a reader
// (in this process or another node process) never sees a partial or
// unverified file. Downloads of the same checksum in this process share one
// transfer.
type downloader struct {
	dir      string
	mu       sync.Mutex
	inflight map[string]*flight
	// sources are local directories searched before the network (a
	// SlapOS download cache, or a directory of source files); offline
	// forbids the network.
	sources []string
	offline bool
}

// SetDownloadSources makes downloads of http(s) URLs look in these local
// directories first, before the network — a SlapOS download cache
// (zc.buildout's layout: files named after the md5 of their URL, at the
// top or in a namespace directory such as cmmi/), or a plain directory of
// files named by their URL's basename or by their checksum. A file found
// there is used only if its checksum is the one asked for. Offline
// forbids the network: a file in none of them is an error naming the URL,
// the checksum it must have and where it was looked for.
func (h *Host) SetDownloadSources(dirs []string, offline bool) {
	if h.dl == nil {
		return
	}
	h.dl.mu.Lock()
	defer h.dl.mu.Unlock()
	h.dl.sources = append([]string(nil), dirs...)
	h.dl.offline = offline
}

// local finds a copy of an http(s) URL in the source directories: the
// opener of a file whose checksum matches r, or nil. The candidates are
// only names derived from the URL and the checksums, so nothing else is
// read.
func (d *downloader) local(r downloadRequest) opener {
	d.mu.Lock()
	sources := d.sources
	d.mu.Unlock()
	if len(sources) == 0 {
		return nil
	}
	urlSum := md5.Sum([]byte(r.URL))
	hashed := hex.EncodeToString(urlSum[:])
	base := ""
	if u, err := url.Parse(r.URL); err == nil {
		base = path.Base(u.Path)
		if base == "/" || base == "." {
			base = ""
		}
	}
	var names []string
	for _, n := range []string{hashed, base, r.MD5, r.SHA256} {
		if n != "" && n != ".." && !strings.ContainsAny(n, "/\x00") {
			names = append(names, n)
		}
	}
	for _, dir := range sources {
		candidates := make([]string, 0, 8)
		for _, n := range names {
			candidates = append(candidates, filepath.Join(dir, n))
		}
		if base != "" {
			candidates = append(candidates, filepath.Join(dir, "dist", base))
		}
		// zc.buildout namespaces (cmmi/, …) hold files named by hash.
		if subs, err := os.ReadDir(dir); err == nil {
			for _, e := range subs {
				if e.IsDir() {
					candidates = append(candidates, filepath.Join(dir, e.Name(), hashed))
				}
			}
		}
		for _, c := range candidates {
			if matchesChecksum(c, r) {
				c := c
				return func(context.Context) (io.ReadCloser, error) { return os.Open(c) }
			}
		}
	}
	return nil
}

// matchesChecksum reports whether the regular file at p has r's checksum
// (sha256 when given, else md5).
func matchesChecksum(p string, r downloadRequest) bool {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if r.SHA256 != "" {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return false
		}
		return hex.EncodeToString(h.Sum(nil)) == r.SHA256
	}
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == r.MD5
}

// checksumText names the checksum a download must have, for messages.
func (r downloadRequest) checksumText() string {
	if r.SHA256 != "" {
		return "sha256 " + r.SHA256
	}
	return "md5sum " + r.MD5
}

// network returns the opener for an http(s) URL: a local copy from the
// source directories, else the network unless offline.
func (d *downloader) network(r downloadRequest, remote opener) (opener, error) {
	if o := d.local(r); o != nil {
		return o, nil
	}
	d.mu.Lock()
	offline, sources := d.offline, d.sources
	d.mu.Unlock()
	if offline {
		where := "the node's download cache " + d.dir
		if len(sources) > 0 {
			where += " and " + strings.Join(sources, ", ")
		}
		base := ""
		if u, err := url.Parse(r.URL); err == nil {
			base = path.Base(u.Path)
		}
		return nil, fmt.Errorf("offline, and no file with %s in %s: save it there as %s (or under the md5 of its URL, or its checksum)", r.checksumText(), where, base)
	}
	return remote, nil
}

type flight struct {
	done chan struct{}
	res  downloadResponse
	err  error
}

type downloadRequest struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	MD5    string `json:"md5"`
}

type downloadResponse struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (d *downloader) shaPath(sum string) string {
	return filepath.Join(d.dir, "sha256", sum[:2], sum)
}

// md5Index maps an md5 to the sha256 of the cached file, so an md5-only
// download is found again without re-downloading.
func (d *downloader) md5Index(sum string) string {
	return filepath.Join(d.dir, "md5", sum[:2], sum)
}

// cached returns the cache entry for the request's checksum, if present and
// intact: an entry whose content no longer matches its name (disk error,
// tampering) is removed, so the caller downloads it again.
func (d *downloader) cached(r downloadRequest) (downloadResponse, bool) {
	sum := r.SHA256
	if sum == "" {
		b, err := os.ReadFile(d.md5Index(r.MD5))
		if err != nil || !isHex(string(b), 64) {
			return downloadResponse{}, false
		}
		sum = string(b)
	}
	fi, err := os.Stat(d.shaPath(sum))
	if err != nil || !fi.Mode().IsRegular() {
		return downloadResponse{}, false
	}
	if ok, err := verifyCached(d.shaPath(sum), sum); err != nil || !ok {
		return downloadResponse{}, false
	}
	return downloadResponse{Path: d.shaPath(sum), SHA256: sum, Size: fi.Size()}, true
}

func (h *Host) download(ctx context.Context, st *callState, req []byte) any {
	var r downloadRequest
	if err := decode(req, &r); err != nil {
		return errorf("download: bad request: %v", err)
	}
	res, err := h.fetch(ctx, st, r)
	if err != nil {
		return errorResponse{Error: err.Error()}
	}
	return res
}

// fetch returns the cached file for r, downloading it first when needed.
func (h *Host) fetch(ctx context.Context, st *callState, r downloadRequest) (downloadResponse, error) {
	d := h.dl
	if d == nil {
		return downloadResponse{}, errors.New("download: the node has no download cache configured")
	}
	r.SHA256, r.MD5 = strings.ToLower(r.SHA256), strings.ToLower(r.MD5)
	switch {
	case r.URL == "":
		return downloadResponse{}, errors.New("download: give url")
	case r.SHA256 == "" && r.MD5 == "":
		return downloadResponse{}, fmt.Errorf("download %s: a checksum is required: give sha256 (or md5)", r.URL)
	case r.SHA256 != "" && !isHex(r.SHA256, 64):
		return downloadResponse{}, fmt.Errorf("download %s: sha256 %q is not 64 hex digits", r.URL, r.SHA256)
	case r.SHA256 == "" && !isHex(r.MD5, 32):
		return downloadResponse{}, fmt.Errorf("download %s: md5 %q is not 32 hex digits", r.URL, r.MD5)
	}
	// Check the source is allowed before answering from the cache, so the
	// cache cannot be used to learn about sources the module may not read.
	open, err := h.source(st, r.URL)
	if err != nil {
		return downloadResponse{}, fmt.Errorf("download %s: %w", r.URL, err)
	}
	if res, ok := d.cached(r); ok {
		return res, nil
	}
	if strings.HasPrefix(r.URL, "http://") || strings.HasPrefix(r.URL, "https://") {
		if open, err = d.network(r, open); err != nil {
			return downloadResponse{}, fmt.Errorf("download %s: %w", r.URL, err)
		}
	}
	key := "sha256:" + r.SHA256
	if r.SHA256 == "" {
		key = "md5:" + r.MD5
	}
	d.mu.Lock()
	if f := d.inflight[key]; f != nil {
		d.mu.Unlock()
		select {
		case <-f.done:
			return f.res, f.err
		case <-ctx.Done():
			return downloadResponse{}, fmt.Errorf("download %s: %w", r.URL, ctx.Err())
		}
	}
	// A transfer that finished between the cache check above and taking
	// the lock has already renamed its file into place.
	if res, ok := d.cached(r); ok {
		d.mu.Unlock()
		return res, nil
	}
	f := &flight{done: make(chan struct{})}
	d.inflight[key] = f
	d.mu.Unlock()
	f.res, f.err = d.transfer(ctx, r, open)
	d.mu.Lock()
	delete(d.inflight, key)
	d.mu.Unlock()
	close(f.done)
	return f.res, f.err
}

type opener func(ctx context.Context) (io.ReadCloser, error)

// source checks a download URL against the session and the grants.
func (h *Host) source(st *callState, raw string) (opener, error) {
	if strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "https://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		if err := st.allowedURL(u); err != nil {
			return nil, err
		}
		return func(ctx context.Context) (io.ReadCloser, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return nil, err
			}
			resp, err := st.httpClient(false).Do(req)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				return nil, fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
			}
			return resp.Body, nil
		}, nil
	}
	p := raw
	if strings.HasPrefix(raw, "file://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("file URL with host %q: only local files", u.Host)
		}
		p = u.Path
	} else if strings.Contains(raw, "://") {
		return nil, errors.New("only http, https and file URLs or paths in the profile directory are supported")
	}
	dir := st.s.cfg.ProfileDir
	if dir == "" {
		return nil, errors.New("local files are only accepted from the profile directory, and this session has none")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil || !filepath.IsLocal(rel) {
		// A file of a directory the session mounts read-only: those of
		// the profile's extended files (a component's patch, a stack's
		// template), which the guest reads anyway.
		for _, m := range st.s.cfg.Mounts {
			if m.ReadOnly && within(m.HostPath, p) {
				dir = filepath.Clean(m.HostPath)
				rel, err = filepath.Rel(dir, p)
				break
			}
		}
		if err != nil || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s is outside the profile directory %s", p, dir)
		}
	}
	return func(context.Context) (io.ReadCloser, error) {
		// os.Root also refuses symlinks that leave the profile directory.
		root, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		return root.Open(rel)
	}, nil
}

// transfer downloads into a temporary file, verifies it and renames it into
// the cache.
func (d *downloader) transfer(ctx context.Context, r downloadRequest, open opener) (downloadResponse, error) {
	fail := func(err error) (downloadResponse, error) {
		return downloadResponse{}, fmt.Errorf("download %s (%s): %w", r.URL, r.checksumText(), err)
	}
	tmpDir := filepath.Join(d.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return fail(err)
	}
	src, err := open(ctx)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(tmpDir, "dl-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	shaH, md5H := sha256.New(), md5.New()
	size, err := io.Copy(io.MultiWriter(tmp, shaH, md5H), contextReader{ctx, src})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	got := hex.EncodeToString(shaH.Sum(nil))
	if err := verify("sha256", r.SHA256, got); err != nil {
		return fail(err)
	}
	if r.SHA256 == "" {
		if err := verify("md5", r.MD5, hex.EncodeToString(md5H.Sum(nil))); err != nil {
			return fail(err)
		}
	}
	final := d.shaPath(got)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fail(err)
	}
	if r.SHA256 == "" {
		if err := writeAtomic(d.md5Index(r.MD5), []byte(got), tmpDir); err != nil {
			return fail(err)
		}
	}
	return downloadResponse{Path: final, SHA256: got, Size: size}, nil
}

func verify(algo, want, got string) error {
	if want != "" && want != got {
		return fmt.Errorf("checksum mismatch: expected %s %s, got %s %s", algo, want, algo, got)
	}
	return nil
}

func writeAtomic(path string, data []byte, tmpDir string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "idx-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// contextReader stops a copy when the call's context ends (a local file
// read has no context of its own).
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// MaxHostDownload bounds what the host's own Download fetches (a module,
// an extended profile): a URL answering forever, or a huge file, cannot
// fill the download cache before its checksum is found wrong.
const MaxHostDownload = 256 << 20

// capped makes open's reader fail once it gave more than max bytes.
func capped(open opener, max int64, what string) opener {
	return func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &cappedReader{rc: rc, left: max, max: max, what: what}, nil
	}
}

type cappedReader struct {
	rc        io.ReadCloser
	left, max int64
	what      string
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a file of exactly max bytes from a larger one.
		var one [1]byte
		n, err := c.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%s is larger than %d MiB, more than a module or a profile may be", c.what, c.max>>20)
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedReader) Close() error { return c.rc.Close() }

// Download fetches rawURL (http, https, file:// or an absolute path) into
// the node's download cache, verified by its sha256, and returns the cached
// path. It is the host's own download — extends URLs of profiles, say —
// so module grants do not apply. Unlike the recipes' cache lookup, a cached
// file is verified again before it is returned: a corrupted entry is
// removed and fetched anew. Concurrent calls for one checksum share one
// transfer in this process; other processes sharing the cache directory
// are safe too, since files are only ever renamed into place complete and
// verified.
func (h *Host) Download(ctx context.Context, rawURL, sha256sum string) (string, error) {
	d := h.dl
	if d == nil {
		return "", errors.New("download: the node has no download cache configured")
	}
	sum := strings.ToLower(sha256sum)
	if !isHex(sum, 64) {
		return "", fmt.Errorf("download %s: sha256 %q is not 64 hex digits: pin the URL with its sha256", rawURL, sha256sum)
	}
	var open opener
	switch {
	case strings.HasPrefix(rawURL, "http://"), strings.HasPrefix(rawURL, "https://"):
		open = func(ctx context.Context) (io.ReadCloser, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
			if err != nil {
				return nil, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				return nil, fmt.Errorf("GET %s: %s", req.URL.Redacted(), resp.Status)
			}
			return resp.Body, nil
		}
	case strings.HasPrefix(rawURL, "file://"), filepath.IsAbs(rawURL):
		p := rawURL
		if strings.HasPrefix(rawURL, "file://") {
			u, err := url.Parse(rawURL)
			if err != nil || (u.Host != "" && u.Host != "localhost") {
				return "", fmt.Errorf("download %s: only local file URLs (file:///PATH) are supported", rawURL)
			}
			p = u.Path
		}
		open = func(context.Context) (io.ReadCloser, error) { return os.Open(p) }
	default:
		return "", fmt.Errorf("download %s: give an http(s) or file URL, or an absolute path", rawURL)
	}
	final := d.shaPath(sum)
	if ok, err := verifyCached(final, sum); err != nil {
		return "", fmt.Errorf("download %s: %w", rawURL, err)
	} else if ok {
		return final, nil
	}
	if strings.HasPrefix(rawURL, "http://") || strings.HasPrefix(rawURL, "https://") {
		var err error
		if open, err = d.network(downloadRequest{URL: rawURL, SHA256: sum}, open); err != nil {
			return "", fmt.Errorf("download %s: %w", rawURL, err)
		}
	}
	open = capped(open, MaxHostDownload, rawURL)
	key := "sha256:" + sum
	d.mu.Lock()
	if f := d.inflight[key]; f != nil {
		d.mu.Unlock()
		select {
		case <-f.done:
			return f.res.Path, f.err
		case <-ctx.Done():
			return "", fmt.Errorf("download %s: %w", rawURL, ctx.Err())
		}
	}
	// A transfer that finished between the check above and taking the
	// lock has renamed its verified file into place.
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		d.mu.Unlock()
		return final, nil
	}
	f := &flight{done: make(chan struct{})}
	d.inflight[key] = f
	d.mu.Unlock()
	f.res, f.err = d.transfer(ctx, downloadRequest{URL: rawURL, SHA256: sum}, open)
	d.mu.Lock()
	delete(d.inflight, key)
	d.mu.Unlock()
	close(f.done)
	return f.res.Path, f.err
}

// DownloadPinned is Download for a URL that carries its checksum as a
// fragment, URL#sha256=HEX (the form of extends URLs).
func (h *Host) DownloadPinned(ctx context.Context, pinned string) (string, error) {
	base, frag, _ := strings.Cut(pinned, "#")
	sum, ok := strings.CutPrefix(frag, "sha256=")
	if !ok {
		return "", fmt.Errorf("%s is not pinned: append #sha256=HEX (the sha256 of its content)", pinned)
	}
	return h.Download(ctx, base, sum)
}

// verifyCached reports whether path holds content with this sha256. A file
// that does not is removed (unless another writer replaced it meanwhile)
// so that it is fetched again; the time of a good one is updated, which
// is what GCDownloadCache calls its last use.
func verifyCached(path, sum string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	if hex.EncodeToString(h.Sum(nil)) == sum {
		now := time.Now()
		os.Chtimes(path, now, now)
		return true, nil
	}
	opened, err1 := f.Stat()
	current, err2 := os.Stat(path)
	if err1 == nil && err2 == nil && os.SameFile(opened, current) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("removing the corrupted cache entry %s: %w", path, err)
		}
	}
	return false, nil
}

// CacheEntry is one file of a download cache.
type CacheEntry struct {
	SHA256 string
	Path   string
	Size   int64
	// Used is when the file was downloaded or last verified by Download.
	Used time.Time
	MD5  []string // md5 index names that lead to it
}

// ListDownloadCache lists the files of the download cache in dir (a node's
// <root>/cache/download), least recently used first.
func ListDownloadCache(dir string) ([]CacheEntry, error) {
	byMD5 := map[string][]string{}
	md5Root := filepath.Join(dir, "md5")
	filepath.WalkDir(md5Root, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil && isHex(string(b), 64) {
				byMD5[string(b)] = append(byMD5[string(b)], de.Name())
			}
		}
		return nil
	})
	var out []CacheEntry
	err := filepath.WalkDir(filepath.Join(dir, "sha256"), func(p string, de os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !de.Type().IsRegular() || !isHex(de.Name(), 64) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		out = append(out, CacheEntry{SHA256: de.Name(), Path: p, Size: fi.Size(), Used: fi.ModTime(), MD5: byMD5[de.Name()]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the download cache %s: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Used.Equal(out[j].Used) {
			return out[i].Used.Before(out[j].Used)
		}
		return out[i].SHA256 < out[j].SHA256
	})
	return out, nil
}

// GCOptions say what GCDownloadCache removes.
type GCOptions struct {
	MaxAge   time.Duration // remove files not used for this long (0: no limit)
	MaxBytes int64         // then remove the least recently used until the cache fits (0: no limit)
	Verify   bool          // rehash every file and remove those that do not match their name
	DryRun   bool          // report, remove nothing
	Now      time.Time     // zero: time.Now()
}

// GCReport is what GCDownloadCache removed (or would remove).
type GCReport struct {
	Removed    []CacheEntry // too old or over the size limit
	Corrupted  []CacheEntry // content does not match the name
	Kept       []CacheEntry
	FreedBytes int64
	StaleTemp  int // leftovers of interrupted downloads
}

// staleTemp is the age after which a file in tmp/ is a leftover of a
// killed process rather than a download in progress.
const staleTemp = 24 * time.Hour

// GCDownloadCache removes old, excess and (with Verify) corrupted files
// from the download cache in dir, and md5 index entries left pointing at
// nothing. Removing a file another process is about to use is harmless: it
// is downloaded again.
func GCDownloadCache(dir string, o GCOptions) (GCReport, error) {
	var rep GCReport
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	entries, err := ListDownloadCache(dir)
	if err != nil {
		return rep, err
	}
	remove := func(e CacheEntry) error {
		rep.FreedBytes += e.Size
		if o.DryRun {
			return nil
		}
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("gc: %w", err)
		}
		return nil
	}
	var live []CacheEntry
	var total int64
	for _, e := range entries {
		if o.Verify {
			f, err := os.Open(e.Path)
			if err != nil {
				return rep, fmt.Errorf("gc: %w", err)
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return rep, fmt.Errorf("gc: reading %s: %w", e.Path, err)
			}
			if hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
				rep.Corrupted = append(rep.Corrupted, e)
				if err := remove(e); err != nil {
					return rep, err
				}
				continue
			}
		}
		if o.MaxAge > 0 && o.Now.Sub(e.Used) > o.MaxAge {
			rep.Removed = append(rep.Removed, e)
			if err := remove(e); err != nil {
				return rep, err
			}
			continue
		}
		live = append(live, e)
		total += e.Size
	}
	// live is least recently used first.
	for len(live) > 0 && o.MaxBytes > 0 && total > o.MaxBytes {
		e := live[0]
		live = live[1:]
		total -= e.Size
		rep.Removed = append(rep.Removed, e)
		if err := remove(e); err != nil {
			return rep, err
		}
	}
	rep.Kept = live
	if o.DryRun {
		return rep, nil
	}
	kept := map[string]bool{}
	for _, e := range live {
		kept[e.SHA256] = true
	}
	filepath.WalkDir(filepath.Join(dir, "md5"), func(p string, de os.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil && !kept[string(b)] {
				os.Remove(p)
			}
		}
		return nil
	})
	tmps, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	for _, t := range tmps {
		if fi, err := t.Info(); err == nil && o.Now.Sub(fi.ModTime()) > staleTemp {
			if os.Remove(filepath.Join(dir, "tmp", t.Name())) == nil {
				rep.StaleTemp++
			}
		}
	}
	return rep, nil
}
