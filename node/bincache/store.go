package bincache

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Store is where archives and entries live: a directory (DirStore) or a
// cache server (HTTPStore). Archives are content-addressed by their sha256
// (SlapOS's shacache); entries are listed by release key (its shadir).
type Store interface {
	// PutArchive stores the archive whose sha256 is sum; content that does
	// not hash to sum is refused.
	PutArchive(ctx context.Context, sum string, r io.Reader) error
	// GetArchive opens an archive; ErrNotFound when absent.
	GetArchive(ctx context.Context, sum string) (io.ReadCloser, error)
	// AddEntry stores a signed entry (an Envelope's JSON) under key.
	AddEntry(ctx context.Context, key string, envelope []byte) error
	// Entries lists the envelopes stored under key (none: empty, no error).
	Entries(ctx context.Context, key string) ([][]byte, error)
}

// ErrNotFound is returned by GetArchive for an archive the store lacks.
var ErrNotFound = errors.New("not in the binary cache")

// MaxEntry bounds one envelope, so that a hostile store cannot make a
// client read without end.
const MaxEntry = 64 << 10

func validSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// DirStore keeps the cache in a directory: <Dir>/shacache/ab/<sha256> for
// archives, <Dir>/shadir/<key>/<sha256 of the envelope>.json for entries.
// Writes go to <Dir>/tmp first and are renamed into place, so concurrent
// writers and readers (processes sharing the directory over NFS included)
// never see a partial file.
type DirStore struct {
	Dir string
}

func (d *DirStore) archivePath(sum string) string {
	return filepath.Join(d.Dir, "shacache", sum[:2], sum)
}

func (d *DirStore) writeVerified(final, sum string, r io.Reader) error {
	tmpDir := filepath.Join(d.Dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tmpDir, "put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("content has sha256 %s, not %s: refused", got, sum)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}

// PutArchive implements Store.
func (d *DirStore) PutArchive(_ context.Context, sum string, r io.Reader) error {
	if !validSum(sum) {
		return fmt.Errorf("archive name %q is not a lowercase hex sha256", sum)
	}
	if err := d.writeVerified(d.archivePath(sum), sum, r); err != nil {
		return fmt.Errorf("store archive %s in %s: %w", sum, d.Dir, err)
	}
	return nil
}

// GetArchive implements Store.
func (d *DirStore) GetArchive(_ context.Context, sum string) (io.ReadCloser, error) {
	if !validSum(sum) {
		return nil, fmt.Errorf("archive name %q is not a lowercase hex sha256", sum)
	}
	f, err := os.Open(d.archivePath(sum))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive %s: %w", sum, ErrNotFound)
	}
	return f, err
}

// AddEntry implements Store.
func (d *DirStore) AddEntry(_ context.Context, key string, envelope []byte) error {
	if !validSum(key) {
		return fmt.Errorf("entry key %q is not a lowercase hex sha256", key)
	}
	if len(envelope) > MaxEntry {
		return fmt.Errorf("entry of %d bytes is larger than %d", len(envelope), MaxEntry)
	}
	s := sha256.Sum256(envelope)
	sum := hex.EncodeToString(s[:])
	final := filepath.Join(d.Dir, "shadir", key, sum+".json")
	if err := d.writeVerified(final, sum, bytes.NewReader(envelope)); err != nil {
		return fmt.Errorf("store entry in %s: %w", d.Dir, err)
	}
	return nil
}

// Entries implements Store.
func (d *DirStore) Entries(_ context.Context, key string) ([][]byte, error) {
	if !validSum(key) {
		return nil, fmt.Errorf("entry key %q is not a lowercase hex sha256", key)
	}
	dir := filepath.Join(d.Dir, "shadir", key)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(b) <= MaxEntry {
			out = append(out, b)
		}
	}
	return out, nil
}

// Keys lists the release keys that have entries, for listings.
func (d *DirStore) Keys() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(d.Dir, "shadir"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range ents {
		if e.IsDir() && validSum(e.Name()) {
			keys = append(keys, e.Name())
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// HTTPStore talks to a cache server (Server, `slapnode cache serve`):
//
//	GET  /shacache/SHA256   an archive        PUT /shacache/SHA256  store one
//	GET  /shadir/KEY        JSON list of entries   POST /shadir/KEY  add one
//
// Uploads carry an Authorization header signed with the uploader's key, so a
// server can accept uploads from known builders only.
type HTTPStore struct {
	URL    string // base URL, e.g. http://127.0.0.1:8750
	Client *http.Client
	// SigningKey authenticates uploads (nil: anonymous uploads).
	SigningKey ed25519.PrivateKey
}

func (h *HTTPStore) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

func (h *HTTPStore) url(kind, name string) string {
	return strings.TrimRight(h.URL, "/") + "/" + kind + "/" + url.PathEscape(name)
}

// authScheme is the Authorization scheme of uploads: the uploader's public
// key and its signature of "METHOD PATH".
const authScheme = "Slapnode-Ed25519"

func uploadAuthMessage(method, path string) []byte {
	return []byte("slapnode-bincache/1 upload\n" + method + " " + path)
}

func (h *HTTPStore) do(ctx context.Context, method, u string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if h.SigningKey != nil && method != http.MethodGet {
		sig := ed25519.Sign(h.SigningKey, uploadAuthMessage(method, req.URL.EscapedPath()))
		req.Header.Set("Authorization", authScheme+" "+
			base64.StdEncoding.EncodeToString(h.SigningKey.Public().(ed25519.PublicKey))+":"+
			base64.StdEncoding.EncodeToString(sig))
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func httpError(resp *http.Response, what string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return fmt.Errorf("%s: %s: %s", what, resp.Status, msg)
}

// PutArchive implements Store.
func (h *HTTPStore) PutArchive(ctx context.Context, sum string, r io.Reader) error {
	resp, err := h.do(ctx, http.MethodPut, h.url("shacache", sum), r, "application/gzip")
	if err != nil {
		return fmt.Errorf("upload archive to %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return httpError(resp, "upload archive to "+h.URL)
	}
	return nil
}

// GetArchive implements Store.
func (h *HTTPStore) GetArchive(ctx context.Context, sum string) (io.ReadCloser, error) {
	resp, err := h.do(ctx, http.MethodGet, h.url("shacache", sum), nil, "")
	if err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", h.URL, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("archive %s at %s: %w", sum, h.URL, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		defer resp.Body.Close()
		return nil, httpError(resp, "binary cache "+h.URL)
	}
	return resp.Body, nil
}

// AddEntry implements Store.
func (h *HTTPStore) AddEntry(ctx context.Context, key string, envelope []byte) error {
	resp, err := h.do(ctx, http.MethodPost, h.url("shadir", key), bytes.NewReader(envelope), "application/json")
	if err != nil {
		return fmt.Errorf("upload entry to %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return httpError(resp, "upload entry to "+h.URL)
	}
	return nil
}

// Entries implements Store.
func (h *HTTPStore) Entries(ctx context.Context, key string) ([][]byte, error) {
	resp, err := h.do(ctx, http.MethodGet, h.url("shadir", key), nil, "")
	if err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp, "binary cache "+h.URL)
	}
	var list []json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256*MaxEntry)).Decode(&list); err != nil {
		return nil, fmt.Errorf("binary cache %s: entry list: %w", h.URL, err)
	}
	out := make([][]byte, len(list))
	for i, e := range list {
		out[i] = e
	}
	return out, nil
}
