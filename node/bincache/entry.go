package bincache

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Schema identifies the entry format; an entry of another schema is skipped.
const Schema = "slapnode-bincache/1"

// signingContext is prepended to the payload before signing, so that a
// signature made for something else with the same key never verifies as an
// entry.
const signingContext = "slapnode-bincache/1 entry\n"

// Entry is the metadata of one archived software directory (SlapOS's shadir
// entry). It is stored signed, in an Envelope.
type Entry struct {
	Schema        string    `json:"schema"`
	ReleaseURL    string    `json:"release_url"`
	Key           string    `json:"key"`                      // Key(ReleaseURL)
	ProfileDigest string    `json:"profile_digest,omitempty"` // profile.Profile.Digest of the build
	Platform      Platform  `json:"platform"`
	SoftwareDir   string    `json:"software_dir"` // where it was built
	Relocatable   bool      `json:"relocatable"`  // no file refers to SoftwareDir
	ArchiveSHA256 string    `json:"archive_sha256"`
	ArchiveSize   int64     `json:"archive_size"`
	Files         int       `json:"files"`
	Created       time.Time `json:"created"`
	Builder       string    `json:"builder,omitempty"` // host name of the building node
}

// Envelope is an Entry as stored: its exact JSON bytes and their signature,
// so that verification never depends on re-encoding.
type Envelope struct {
	Payload   []byte `json:"payload"`
	PublicKey []byte `json:"public_key"`
	Signature []byte `json:"signature"`
}

// Platform is what a built software directory is compatible with.
type Platform struct {
	OS     string `json:"os"`               // runtime.GOOS
	Arch   string `json:"arch"`             // runtime.GOARCH
	Distro string `json:"distro,omitempty"` // ID-VERSION_ID of /etc/os-release, e.g. debian-12
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Distro != "" {
		s += " (" + p.Distro + ")"
	}
	return s
}

// compatible says why an entry built on p cannot run on node, or "".
// Binaries link against the system's libraries, so the distribution must
// match too when both sides know it (as SlapOS compares distributions).
func (p Platform) compatible(node Platform) string {
	if p.OS != node.OS || p.Arch != node.Arch {
		return fmt.Sprintf("built for %s, this node is %s", p, node)
	}
	if p.Distro != "" && node.Distro != "" && p.Distro != node.Distro {
		return fmt.Sprintf("built on %s, this node runs %s", p.Distro, node.Distro)
	}
	return ""
}

// CurrentPlatform describes this machine.
func CurrentPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		p.Distro = distro(b)
	}
	return p
}

// distro extracts ID-VERSION_ID from an os-release file. Only the major
// version counts for Debian-like point releases (12.5 and 12.6 are ABI
// compatible), as SlapOS does.
func distro(osRelease []byte) string {
	vals := map[string]string{}
	for _, line := range strings.Split(string(osRelease), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			vals[k] = strings.Trim(v, `"'`)
		}
	}
	id, ver := vals["ID"], vals["VERSION_ID"]
	if id == "" {
		return ""
	}
	if id == "debian" || id == "raspbian" {
		id = "debian"
		ver, _, _ = strings.Cut(ver, ".")
	}
	if ver == "" {
		return id
	}
	return id + "-" + ver
}

// Key is the directory key of a release: the hex sha256 of its URL.
func Key(releaseURL string) string {
	s := sha256.Sum256([]byte(releaseURL))
	return hex.EncodeToString(s[:])
}

// KeyID is a short, stable name of a public key for messages: the first 16
// hex digits of its sha256.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// Sign encodes e and signs it with key.
func Sign(e *Entry, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("sign entry: the signing key is not an ed25519 private key")
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	env := Envelope{
		Payload:   payload,
		PublicKey: key.Public().(ed25519.PublicKey),
		Signature: ed25519.Sign(key, append([]byte(signingContext), payload...)),
	}
	return json.Marshal(env)
}

// Errors of Open, matchable with errors.Is.
var (
	ErrUntrusted    = errors.New("signed by a key that is not trusted")
	ErrBadSignature = errors.New("signature does not verify")
	ErrMalformed    = errors.New("malformed entry")
)

// Open verifies an envelope against the trusted keys and returns its entry
// and the key that signed it. It never returns an entry it could not verify.
func Open(envelope []byte, trusted []ed25519.PublicKey) (*Entry, ed25519.PublicKey, error) {
	var env Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(env.Payload) == 0 || len(env.Signature) != ed25519.SignatureSize {
		return nil, nil, fmt.Errorf("%w: unsigned (no payload or signature)", ErrMalformed)
	}
	if len(env.PublicKey) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%w: no ed25519 public key", ErrMalformed)
	}
	var signer ed25519.PublicKey
	for _, k := range trusted {
		if bytes.Equal(k, env.PublicKey) {
			signer = k
			break
		}
	}
	if signer == nil {
		return nil, nil, fmt.Errorf("%w: key %s", ErrUntrusted, KeyID(env.PublicKey))
	}
	if !ed25519.Verify(signer, append([]byte(signingContext), env.Payload...), env.Signature) {
		return nil, nil, fmt.Errorf("%w (key %s): the entry was altered after signing", ErrBadSignature, KeyID(signer))
	}
	var e Entry
	if err := json.Unmarshal(env.Payload, &e); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Schema != Schema {
		return nil, nil, fmt.Errorf("%w: schema %q, this node reads %q", ErrMalformed, e.Schema, Schema)
	}
	return &e, signer, nil
}

// peek decodes an envelope's entry without verifying it, for listings only.
func peek(envelope []byte) (*Entry, ed25519.PublicKey, error) {
	var env Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, nil, err
	}
	var e Entry
	if err := json.Unmarshal(env.Payload, &e); err != nil {
		return nil, nil, err
	}
	return &e, env.PublicKey, nil
}

// Key files hold one line: "ed25519-public:BASE64" (32 bytes) or
// "ed25519-private:BASE64" (the 32-byte seed).
const (
	publicPrefix  = "ed25519-public:"
	privatePrefix = "ed25519-private:"
)

// GenerateKey returns a new signing key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(nil)
}

// FormatPublicKey is the text form of a public key (for a .pub file or a
// trusted_keys entry).
func FormatPublicKey(k ed25519.PublicKey) string {
	return publicPrefix + base64.StdEncoding.EncodeToString(k)
}

// FormatPrivateKey is the text form of a private key (for a .key file).
func FormatPrivateKey(k ed25519.PrivateKey) string {
	return privatePrefix + base64.StdEncoding.EncodeToString(k.Seed())
}

// ParsePublicKey reads the text form of a public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), publicPrefix)
	if !ok {
		return nil, fmt.Errorf("not a public key: it must start with %q (made by 'slapnode cache keygen')", publicPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: %q is not the base64 of %d bytes", b64, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey reads the text form of a private key.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), privatePrefix)
	if !ok {
		return nil, fmt.Errorf("not a private key: it must start with %q (made by 'slapnode cache keygen')", privatePrefix)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("private key: not the base64 of a %d-byte seed", ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}
