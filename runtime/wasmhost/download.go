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
	"path/filepath"
	"strings"
	"sync"
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

// cached returns the cache entry for the request's checksum, if present.
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
		return nil, fmt.Errorf("%s is outside the profile directory %s", p, dir)
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
		return downloadResponse{}, fmt.Errorf("download %s: %w", r.URL, err)
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
