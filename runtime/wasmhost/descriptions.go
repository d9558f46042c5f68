package wasmhost

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/slapnode/slapnode/internal/atomicfile"
)

// descriptionsDir is the directory of a compilation cache that holds the
// descriptions of the modules compiled there (DIGEST.json); its version
// changes with the format.
const descriptionsDir = "descriptions-v1"

type cachedDescription struct {
	Description Description `json:"description"`
	Described   bool        `json:"described"`
}

// CachedDescription returns the description of the trusted module whose
// wasm bytes hash to digest, as recorded beside its machine code: in the
// machine's compilation cache, else in the install-time cache (`slapnode
// cache compile` writes both). Knowing a built-in module's recipes and
// their options without loading it lets a new node root check a profile
// while the module loads in the background. Both directories pass the
// ownership checks of MachineCacheDir and InstallCacheDir, so nobody but
// root or the caller wrote what is read here.
func (h *Host) CachedDescription(digest string) (d Description, described, ok bool) {
	if !isDigest(digest) {
		return Description{}, false, false
	}
	for _, dir := range []string{h.cfg.CacheDir, h.cfg.InstallCacheDir} {
		if dir == "" {
			continue
		}
		if d, described, ok := ReadDescription(filepath.Join(dir, descriptionsDir, digest+".json")); ok {
			return d, described, true
		}
	}
	return Description{}, false, false
}

// ReadDescription reads a module's description from a file written by
// WriteDescription; ok is false when it is missing or not one.
func ReadDescription(path string) (d Description, described, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Description{}, false, false
	}
	var c cachedDescription
	if json.Unmarshal(b, &c) != nil || c.Description.ABI == 0 {
		return Description{}, false, false
	}
	return c.Description, c.Described, true
}

// WriteDescription records m's description in path, atomically.
func WriteDescription(path string, m *Module, perm os.FileMode) error {
	return atomicfile.WriteJSON(path, cachedDescription{m.Description, m.Described}, perm)
}

// SaveDescription records m's description in the machine's compilation
// cache (CachedDescription). It is a cache: an error only costs a module
// load later.
func (h *Host) SaveDescription(m *Module) {
	_ = h.saveDescription(m, 0o700, 0o600)
}

func (h *Host) saveDescription(m *Module, dirMode, fileMode os.FileMode) error {
	if h.cfg.CacheDir == "" || !isDigest(m.Digest) {
		return nil
	}
	dir := filepath.Join(h.cfg.CacheDir, descriptionsDir)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return err
	}
	return WriteDescription(filepath.Join(dir, m.Digest+".json"), m, fileMode)
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
