package bincache

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// ConfigFile is where a node root keeps its binary cache configuration:
// <root>/cache.hcl. Without it the node builds everything from source.
const ConfigFile = "cache.hcl"

// fileConfig is the HCL form:
//
//	binary_cache {
//	  url                = "http://cache.example.net:8750"   # or a directory
//	  trusted_keys       = ["builder.pub", "ed25519-public:BASE64…"]
//	  signing_key        = "builder.key"   # optional: upload what this node builds
//	  upload_blacklist   = ["/home/me/dev/"]
//	  download_blacklist = []
//	  force              = ["https://releases.example.net/"]
//	}
type fileConfig struct {
	Binary *struct {
		URL               string   `hcl:"url"`
		TrustedKeys       []string `hcl:"trusted_keys,optional"`
		SigningKey        string   `hcl:"signing_key,optional"`
		UploadBlacklist   []string `hcl:"upload_blacklist,optional"`
		DownloadBlacklist []string `hcl:"download_blacklist,optional"`
		Force             []string `hcl:"force,optional"`
	} `hcl:"binary_cache,block"`
}

// LoadConfig reads <root>/cache.hcl. It returns nil and no error when the
// file does not exist or has no binary_cache block: the cache is optional.
// Key file paths are relative to the file. The signing key's own public
// key is trusted too: a node trusts what it built itself.
func LoadConfig(root string) (*Config, error) {
	path := filepath.Join(root, ConfigFile)
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, src)
}

// ParseConfig parses the content of a cache.hcl file named path.
func ParseConfig(path string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var fc fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return nil, diagError(diags)
	}
	if fc.Binary == nil {
		return nil, nil
	}
	dir := filepath.Dir(path)
	b := fc.Binary
	cfg := &Config{URL: b.URL, UploadBlacklist: b.UploadBlacklist, DownloadBlacklist: b.DownloadBlacklist, ForceList: b.Force}
	if cfg.URL != "" && !strings.Contains(cfg.URL, "://") && !filepath.IsAbs(cfg.URL) {
		cfg.URL = filepath.Join(dir, cfg.URL)
	}
	for _, k := range b.TrustedKeys {
		pub, err := readPublicKey(dir, k)
		if err != nil {
			return nil, fmt.Errorf("%s: trusted_keys: %w", path, err)
		}
		cfg.TrustedKeys = append(cfg.TrustedKeys, pub)
	}
	if b.SigningKey != "" {
		kp := b.SigningKey
		if !filepath.IsAbs(kp) {
			kp = filepath.Join(dir, kp)
		}
		key, err := ReadPrivateKeyFile(kp)
		if err != nil {
			return nil, fmt.Errorf("%s: signing_key: %w", path, err)
		}
		cfg.SigningKey = key
		own := key.Public().(ed25519.PublicKey)
		trusted := false
		for _, t := range cfg.TrustedKeys {
			trusted = trusted || bytes.Equal(t, own)
		}
		if !trusted {
			cfg.TrustedKeys = append(cfg.TrustedKeys, own)
		}
	}
	return cfg, nil
}

// diagError renders every diagnostic as "file:line:col: summary: detail".
func diagError(diags hcl.Diagnostics) error {
	var msgs []string
	for _, d := range diags {
		pos := "binary cache configuration"
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		msgs = append(msgs, fmt.Sprintf("%s: %s: %s", pos, d.Summary, d.Detail))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

func readPublicKey(dir, s string) (ed25519.PublicKey, error) {
	if strings.HasPrefix(s, publicPrefix) {
		return ParsePublicKey(s)
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(dir, s)
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, err
	}
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return k, nil
}

// ReadPrivateKeyFile reads a key written by WriteKeyPair. The file must not
// be readable by others.
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyPair generates a key pair and writes PREFIX.key (mode 0600) and
// PREFIX.pub. Existing files are never overwritten.
func WriteKeyPair(prefix string) (ed25519.PublicKey, error) {
	pub, priv, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	kf, err := os.OpenFile(prefix+".key", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing the private key: %w", err)
	}
	_, err = fmt.Fprintln(kf, FormatPrivateKey(priv))
	if cerr := kf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	pf, err := os.OpenFile(prefix+".pub", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("writing the public key: %w", err)
	}
	_, err = fmt.Fprintln(pf, FormatPublicKey(pub))
	if cerr := pf.Close(); err == nil {
		err = cerr
	}
	return pub, err
}
