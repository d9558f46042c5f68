package bincache

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Server serves a DirStore over HTTP (the routes of HTTPStore).
//
// Downloads are open: what a client may trust is decided by the client,
// which verifies every entry's signature and every archive's checksum.
// Uploads are checked here too so that a cache is not filled by strangers:
// archives must hash to their name, entries must be well-formed signed
// envelopes, and every upload must be authenticated by, and every entry
// signed with, one of UploadKeys — unless AnonymousUploads says otherwise.
type Server struct {
	Store *DirStore
	// UploadKeys may upload.
	UploadKeys []ed25519.PublicKey
	// AnonymousUploads accepts uploads from anyone when UploadKeys is
	// empty (they are still content-checked and bounded by MaxArchive);
	// without it, a server with no UploadKeys refuses every upload.
	AnonymousUploads bool
	// ReadOnly refuses every upload.
	ReadOnly bool
	// MaxArchive bounds one uploaded archive (0: DefaultMaxArchive).
	MaxArchive int64
	// Logger, when set, is told about refused uploads.
	Logger *slog.Logger
}

// DefaultMaxArchive bounds an uploaded archive when Server.MaxArchive is 0:
// the largest software releases of the SlapOS corpus pack to well under it.
const DefaultMaxArchive = 4 << 30

// ErrAnonymousUpload is the refusal of an upload to a server that has no
// upload keys and does not accept anonymous uploads.
var ErrAnonymousUpload = errors.New("this binary cache takes no anonymous uploads: start 'slapnode cache serve' with --upload-key KEY.pub (or, to accept anyone's, --anonymous-uploads)")

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || !validSum(name) || (kind != "shacache" && kind != "shadir") {
		http.Error(w, "not found: use /shacache/SHA256 or /shadir/KEY", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if kind == "shacache" {
			s.getArchive(w, r, name)
		} else {
			s.getEntries(w, r, name)
		}
	case http.MethodPut, http.MethodPost:
		if err := s.authorize(r); err != nil {
			if s.Logger != nil {
				s.Logger.Warn("upload refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			}
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if kind == "shacache" {
			s.putArchive(w, r, name)
		} else {
			s.putEntry(w, r, name)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Server) authorize(r *http.Request) error {
	if s.ReadOnly {
		return errors.New("this binary cache is read-only")
	}
	if len(s.UploadKeys) == 0 {
		if s.AnonymousUploads {
			return nil
		}
		return ErrAnonymousUpload
	}
	pub, err := uploadKey(r)
	if err != nil {
		return err
	}
	for _, k := range s.UploadKeys {
		if bytes.Equal(k, pub) {
			return nil
		}
	}
	return fmt.Errorf("key %s may not upload to this cache (start 'slapnode cache serve' with --upload-key for it)", KeyID(pub))
}

// uploadKey checks the request's Authorization signature and returns the
// key that made it.
func uploadKey(r *http.Request) (ed25519.PublicKey, error) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), authScheme+" ")
	if !ok {
		return nil, errors.New("uploads must be signed: configure signing_key on the uploading node")
	}
	pb, sb, _ := strings.Cut(v, ":")
	pub, err1 := base64.StdEncoding.DecodeString(pb)
	sig, err2 := base64.StdEncoding.DecodeString(sb)
	if err1 != nil || err2 != nil || len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("malformed upload signature")
	}
	if !ed25519.Verify(pub, uploadAuthMessage(r.Method, r.URL.EscapedPath()), sig) {
		return nil, errors.New("upload signature does not verify")
	}
	return pub, nil
}

func (s *Server) getArchive(w http.ResponseWriter, r *http.Request, sum string) {
	f, err := s.Store.GetArchive(r.Context(), sum)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "no such archive", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/gzip")
	if rs, ok := f.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", time.Time{}, rs)
		return
	}
	io.Copy(w, f)
}

func (s *Server) getEntries(w http.ResponseWriter, r *http.Request, key string) {
	list, err := s.Store.Entries(r.Context(), key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out := make([]json.RawMessage, 0, len(list))
	for _, e := range list {
		if json.Valid(e) {
			out = append(out, e)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (s *Server) putArchive(w http.ResponseWriter, r *http.Request, sum string) {
	limit := s.MaxArchive
	if limit <= 0 {
		limit = DefaultMaxArchive
	}
	if r.ContentLength > limit {
		http.Error(w, fmt.Sprintf("archive of %d bytes refused: this cache takes at most %d bytes per archive", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
		return
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if err := s.Store.PutArchive(r.Context(), sum, body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("archive refused: this cache takes at most %d bytes per archive", limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) putEntry(w http.ResponseWriter, r *http.Request, key string) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEntry))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The server checks what it can without trusting anyone: a signed,
	// well-formed entry filed under its own release's key.
	e, signer, err := peek(b)
	if err != nil {
		http.Error(w, "not an entry envelope: "+err.Error(), http.StatusBadRequest)
		return
	}
	trusted := []ed25519.PublicKey{signer}
	if len(s.UploadKeys) > 0 {
		trusted = s.UploadKeys
	}
	if _, _, err := Open(b, trusted); err != nil {
		http.Error(w, "entry refused: "+err.Error(), http.StatusBadRequest)
		return
	}
	if e.Key != key || Key(e.ReleaseURL) != key {
		http.Error(w, "entry refused: it belongs under key "+Key(e.ReleaseURL), http.StatusBadRequest)
		return
	}
	if err := s.Store.AddEntry(r.Context(), key, b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}
