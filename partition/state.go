package partition

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nofollow"
)

// PartRecord is what the engine remembers of an installed part.
type PartRecord struct {
	Recipe    string          `json:"recipe"`
	Module    string          `json:"module_digest"`
	Signature string          `json:"signature"`
	Options   json.RawMessage `json:"options"`
	Outputs   json.RawMessage `json:"outputs,omitempty"`
	Installed []string        `json:"installed,omitempty"`
	Deps      []string        `json:"deps,omitempty"`
	Seq       int64           `json:"seq"` // install order, for reverse-order uninstall
}

// journal is the per-target state: one record per installed part, kept as an
// append-only log of authenticated lines. Each change is one write(2) of one
// line, so a process killed at any point leaves a log whose every complete
// line is valid; a torn last line (no newline) is cut. The log is fsync'd
// once per apply (Sync) rather than per part — a kill loses nothing (the
// kernel has the data), a power loss at worst forgets the last parts, which
// the next apply installs again. When the log grows past twice its live
// size it is compacted by an atomic rewrite.
//
// Every line is "HMAC JSON", the HMAC-SHA256 of the target's binding
// ("instance:slappart0") and the JSON under the node's journal key
// (<root>/state/journal.key, 0600). A complete line whose HMAC does not
// verify was forged, edited or damaged: the journal is refused with an
// error, never partly trusted. Instance journals live in <root>/state,
// which only the node's user writes (docs/adr/0002-part-state-journal.md).
type journal struct {
	d     *nofollow.Dir // the state directory
	path  string        // of the journal, for messages
	f     *os.File      // open for appending; nil when read only
	mac   hash.Hash
	bind  string
	parts map[string]*PartRecord
	lines int
	seq   int64
	dirID string // identity of the target directory the records are about
	// buf is the last line appended, whose array the next one reuses:
	// a line is written before append returns.
	buf []byte
}

type journalLine struct {
	Op   string      `json:"op"` // "set", "del" or "dir"
	Part string      `json:"part,omitempty"`
	Rec  *PartRecord `json:"rec,omitempty"`
	// Dir identifies the target directory (device:inode) the records
	// describe: a journal about a directory since deleted and created
	// again is stale.
	Dir string `json:"dir,omitempty"`
}

const (
	journalName = "parts.journal"
	maxJournal  = 256 << 20
	keyName     = "journal.key"
)

// journalSpec says where a target's journal is and how to open it.
type journalSpec struct {
	stateDir string // the journal's directory; its parent is trusted
	bind     string // "instance:ID" or "software:MD5"
	key      []byte
	dirID    string // current identity of the target directory; "" unknown
	// trusted: an unauthenticated journal of an older version found in
	// stateDir itself is taken over (software directories: only root
	// writes them).
	trusted bool
	// adopt: the journal was authenticated by another node (a software
	// directory unpacked from a signed binary-cache archive): its lines
	// are taken unverified and rewritten under this node's key.
	adopt bool
	// legacy, when set, is the target directory where an older version
	// kept the journal (.slapnode/parts.journal), to migrate from.
	legacy string
	plan   bool
	note   func(format string, args ...any)
}

// errForged is wrapped by the errors of a journal line that does not
// authenticate.
var errForged = errors.New("not authenticated by this node's journal key")

func (s *journalSpec) notef(format string, args ...any) {
	if s.note != nil {
		s.note(format, args...)
	}
}

// openJournal opens (apply) or reads (plan) a target's journal.
func openJournal(s journalSpec) (*journal, error) {
	j := &journal{path: filepath.Join(s.stateDir, journalName), bind: s.bind, parts: map[string]*PartRecord{}}
	if s.key != nil {
		j.mac = hmac.New(sha256.New, s.key)
	}
	parent, err := nofollow.Open(filepath.Dir(s.stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		if s.plan {
			return j, j.migrate(s, true)
		}
		// The parent is the node's (<root>/state/instance): trusted.
		if err := os.MkdirAll(filepath.Dir(s.stateDir), 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		parent, err = nofollow.Open(filepath.Dir(s.stateDir))
	}
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	defer parent.Close()
	if s.plan {
		j.d, err = parent.OpenDir(filepath.Base(s.stateDir))
		if errors.Is(err, fs.ErrNotExist) {
			return j, j.migrate(s, true)
		}
	} else {
		j.d, err = parent.MkdirAll(filepath.Base(s.stateDir), 0o700)
		if err == nil {
			err = tighten(j.d, ".", 0o700)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if !s.plan {
		// Temporary files of a compaction killed before its rename.
		atomicfile.CleanTempIn(j.d, ".")
	}
	flags := os.O_RDONLY
	if !s.plan {
		flags = os.O_RDWR | os.O_APPEND
	}
	f, err := j.d.OpenFile(journalName, flags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if err := j.migrate(s, s.plan); err != nil {
			j.close()
			return nil, err
		}
		if s.plan {
			return j, nil
		}
		if len(j.parts) > 0 {
			if err := j.rewrite(s.dirID); err != nil {
				j.close()
				return nil, err
			}
			j.removeLegacy(s)
			return j, nil
		}
		f, err = j.d.OpenFile(journalName, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		j.close()
		return nil, fmt.Errorf("open state: %w", err)
	}
	j.f = f
	if err := checkOwn(f, j.path); err != nil {
		j.close()
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxJournal+1))
	if err == nil && len(data) > maxJournal {
		err = fmt.Errorf("larger than %d bytes", maxJournal)
	}
	if err != nil {
		j.close()
		return nil, fmt.Errorf("read state %s: %w", j.path, err)
	}
	valid, legacy, err := j.replay(data, s.trusted, s.adopt)
	if err != nil {
		j.close()
		return nil, err
	}
	if s.adopt {
		j.dirID, legacy = "", true // the builder's directory, and its key
	}
	stale := s.dirID != "" && j.dirID != "" && !sameDir(j.dirID, s.dirID)
	if stale {
		s.notef("state of %s was about a directory since deleted and created again: starting afresh", s.bind)
		j.parts, j.seq, j.lines = map[string]*PartRecord{}, 0, 0
	}
	if s.plan {
		j.f.Close()
		j.f = nil
		return j, nil
	}
	if legacy || stale {
		// Rewrite in the authenticated form at once.
		if err := j.rewrite(s.dirID); err != nil {
			j.close()
			return nil, err
		}
		return j, nil
	}
	if valid < len(data) {
		// A torn tail from a killed apply: cut it so new lines follow
		// complete ones.
		if err := f.Truncate(int64(valid)); err != nil {
			j.close()
			return nil, fmt.Errorf("repair state %s: %w", j.path, err)
		}
	}
	if s.dirID != "" && j.dirID != s.dirID {
		if err := j.append(journalLine{Op: "dir", Dir: s.dirID}); err != nil {
			j.close()
			return nil, err
		}
		j.dirID = s.dirID
	}
	return j, nil
}

// checkOwn refuses a state file that is not a regular file of this
// process's user with a single link: a hard link would make appends to it
// write to another file.
func checkOwn(f *os.File, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("state %s: not a regular file: refusing it", path)
	case st.Nlink != 1:
		return fmt.Errorf("state %s: has %d hard links: refusing to write through it (remove the other links, or the file to start afresh)", path, st.Nlink)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("state %s: owned by uid %d, not by this node's user: refusing it", path, st.Uid)
	}
	if st.Mode&0o077 != 0 {
		return f.Chmod(0o600)
	}
	return nil
}

// tighten removes group and other bits from rel below d.
func tighten(d *nofollow.Dir, rel string, mode os.FileMode) error {
	st, err := d.Lstat(rel)
	if err != nil {
		return err
	}
	if st.Mode().Perm() != mode {
		return d.Chmod(rel, mode)
	}
	return nil
}

// replay applies the lines of data. It returns how many bytes are complete
// lines, and whether the data was an older version's unauthenticated log
// (accepted only when trusted).
func (j *journal) replay(data []byte, trusted, adopt bool) (valid int, legacy bool, err error) {
	rest := data
	lineNo := 0
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break // torn tail
		}
		line := rest[:i]
		rest = rest[i+1:]
		lineNo++
		var body []byte
		switch {
		case len(line) > 65 && line[64] == ' ' && isHex(line[:64]):
			if j.mac == nil && !adopt {
				return 0, false, fmt.Errorf("state %s: no journal key to authenticate it", j.path)
			}
			if !adopt && !hmac.Equal(j.sum(line[65:]), line[:64]) {
				return 0, false, fmt.Errorf("state %s:%d: %w (forged, edited or damaged): refusing to use it; if the disk was damaged, remove the file and the next apply installs every part again", j.path, lineNo, errForged)
			}
			body = line[65:]
		case len(line) > 9 && line[8] == ' ' && isHex(line[:8]):
			if !trusted {
				return 0, false, fmt.Errorf("state %s:%d: %w (an unauthenticated line of an older version where none was ever written): refusing to use it", j.path, lineNo, errForged)
			}
			var sum uint32
			fmt.Sscanf(string(line[:8]), "%08x", &sum)
			if crc32.ChecksumIEEE(line[9:]) != sum {
				// The older version stopped at a damaged line.
				return valid, true, nil
			}
			body, legacy = line[9:], true
		default:
			if trusted && lineNo == 1 {
				// An older version's log damaged from its start.
				return 0, true, nil
			}
			return 0, false, fmt.Errorf("state %s:%d: %w (not a journal line): refusing to use it; if the disk was damaged, remove the file and the next apply installs every part again", j.path, lineNo, errForged)
		}
		var l journalLine
		if err := json.Unmarshal(body, &l); err != nil {
			return 0, false, fmt.Errorf("state %s:%d: %w", j.path, lineNo, err)
		}
		j.apply(l)
		valid += i + 1
	}
	return valid, legacy, nil
}

func (j *journal) apply(l journalLine) {
	switch l.Op {
	case "set":
		if l.Rec != nil {
			j.parts[l.Part] = l.Rec
			j.seq = max(j.seq, l.Rec.Seq)
		}
	case "del":
		delete(j.parts, l.Part)
	case "dir":
		j.dirID = l.Dir
	}
	j.lines++
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// sum is the hex HMAC of a line's JSON, bound to the target.
func (j *journal) sum(body []byte) []byte {
	out := make([]byte, hex.EncodedLen(sha256.Size))
	j.sumInto(out, body)
	return out
}

// sumInto writes the hex HMAC of body into dst (2*sha256.Size bytes).
func (j *journal) sumInto(dst, body []byte) {
	j.mac.Reset()
	j.mac.Write([]byte(j.bind))
	j.mac.Write([]byte{0})
	j.mac.Write(body)
	var buf [sha256.Size]byte
	hex.Encode(dst, j.mac.Sum(buf[:0]))
}

// format appends the line of l to buf: its JSON (as json.Marshal writes
// it) encoded in place after room for the HMAC, which is then written
// there, so that a line costs no copy of its record.
func (j *journal) format(buf []byte, l journalLine) ([]byte, error) {
	start := len(buf)
	const sumLen = 2 * sha256.Size
	buf = slices.Grow(buf, sumLen+1+lineSize(l))
	buf = buf[:start+sumLen+1]
	w := bytes.NewBuffer(buf)
	if err := json.NewEncoder(w).Encode(l); err != nil { // with the newline
		return nil, err
	}
	buf = w.Bytes()
	body := buf[start+sumLen+1 : len(buf)-1]
	j.sumInto(buf[start:start+sumLen], body)
	buf[start+sumLen] = ' '
	return buf, nil
}

// lineSize is about the length of l's JSON.
func lineSize(l journalLine) int {
	n := 64 + len(l.Part) + len(l.Dir)
	if r := l.Rec; r != nil {
		n += 256 + len(r.Recipe) + len(r.Options) + len(r.Outputs)
		for _, p := range r.Installed {
			n += len(p) + 3
		}
		for _, d := range r.Deps {
			n += len(d) + 3
		}
	}
	return n
}

// migrate reads the journal an older version kept in the target directory,
// <dir>/.slapnode/parts.journal: a directory the partition user could
// write, so it is read without following links, only when it is a regular
// file of the node's user with one link, and its records keep only
// installed paths inside the target. Anything else is not migrated (every
// part is then installed again, which overwrites what is there).
func (j *journal) migrate(s journalSpec, plan bool) error {
	if s.legacy == "" {
		return nil
	}
	d, err := nofollow.OpenNoFollow(s.legacy)
	if err != nil {
		return nil
	}
	defer d.Close()
	rel := filepath.Join(".slapnode", journalName)
	f, st, err := d.OpenRegular(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.notef("state of an older version not migrated: %v; every part is installed again", err)
		return nil
	}
	defer f.Close()
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Nlink != 1 || int(sys.Uid) != os.Geteuid() || st.Size() > maxJournal {
		s.notef("state of an older version not migrated: %s is not a file the node wrote (owner %d, %d links): every part is installed again", d.Path(rel), sys.Uid, sys.Nlink)
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxJournal))
	if err != nil {
		return fmt.Errorf("read state %s: %w", d.Path(rel), err)
	}
	old := &journal{path: d.Path(rel), parts: map[string]*PartRecord{}}
	if _, _, err := old.replay(data, true, false); err != nil {
		s.notef("state of an older version not migrated: %v; every part is installed again", err)
		return nil
	}
	for name, rec := range old.parts {
		kept := rec.Installed[:0]
		for _, p := range rec.Installed {
			if within(s.legacy, p) {
				kept = append(kept, p)
			}
		}
		rec.Installed = kept
		j.parts[name] = rec
		j.seq = max(j.seq, rec.Seq)
	}
	if !plan && len(j.parts) > 0 {
		s.notef("state of %s migrated from %s to %s", s.bind, d.Path(rel), j.path)
	}
	return nil
}

// legacyFiles are what older versions wrote in <partition>/.slapnode.
var legacyFiles = []string{journalName, "connection.json", "converged.json", "promises.json", "promise-bang.json"}

// removeLegacy removes the older version's state from the target directory
// once migrated (without following links; what is not the node's stays).
func (j *journal) removeLegacy(s journalSpec) {
	if s.legacy == "" {
		return
	}
	d, err := nofollow.OpenNoFollow(s.legacy)
	if err != nil {
		return
	}
	defer d.Close()
	RemoveLegacyState(d)
}

// RemoveLegacyState removes what an older version kept in <dir>/.slapnode
// (d is dir), never through a link, then the directory if it is empty.
func RemoveLegacyState(d *nofollow.Dir) {
	names, err := d.ReadDirNames(".slapnode")
	if err != nil {
		return
	}
	for _, n := range names {
		known := atomicfile.IsTemp(n)
		for _, l := range legacyFiles {
			known = known || n == l
		}
		if known {
			d.Remove(filepath.Join(".slapnode", n))
		}
	}
	d.Remove(".slapnode")
}

func (j *journal) append(l journalLine) error {
	line, err := j.format(j.buf[:0], l)
	if err != nil {
		return err
	}
	j.buf = line
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	j.lines++
	return nil
}

func (j *journal) set(name string, r *PartRecord) error {
	j.seq++
	r.Seq = j.seq
	if err := j.append(journalLine{Op: "set", Part: name, Rec: r}); err != nil {
		return err
	}
	j.parts[name] = r
	return nil
}

func (j *journal) del(name string) error {
	if err := j.append(journalLine{Op: "del", Part: name}); err != nil {
		return err
	}
	delete(j.parts, name)
	return nil
}

// close makes the log durable, compacting it when worthwhile.
func (j *journal) close() error {
	if j.d != nil {
		defer func() { j.d.Close(); j.d = nil }()
	}
	if j.f == nil {
		return nil
	}
	defer func() { j.f = nil }()
	if j.lines > 2*len(j.parts)+16 {
		if err := j.compact(); err == nil {
			return j.f.Close()
		}
	}
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	return j.f.Close()
}

// compact rewrites the log with one line per live record (and the target
// directory's identity first).
func (j *journal) compact() error {
	var buf []byte
	var err error
	if j.dirID != "" {
		if buf, err = j.format(buf, journalLine{Op: "dir", Dir: j.dirID}); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(j.parts))
	for n := range j.parts {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool { return j.parts[names[a]].Seq < j.parts[names[b]].Seq })
	for _, n := range names {
		if buf, err = j.format(buf, journalLine{Op: "set", Part: n, Rec: j.parts[n]}); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteIn(j.d, journalName, buf, 0o600, -1, -1); err != nil {
		return err
	}
	j.lines = len(names)
	if j.dirID != "" {
		j.lines++
	}
	return nil
}

// rewrite compacts the log now (migrated, converted or stale state) and
// opens the new file for appending.
func (j *journal) rewrite(dirID string) error {
	if dirID != "" {
		j.dirID = dirID
	}
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if err := j.compact(); err != nil {
		return fmt.Errorf("write state %s: %w", j.path, err)
	}
	f, err := j.d.OpenFile(journalName, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	j.f = f
	return nil
}

// byReverseSeq lists part names, most recently installed first.
func (j *journal) byReverseSeq(names []string) []string {
	sort.Slice(names, func(a, b int) bool { return j.parts[names[a]].Seq > j.parts[names[b]].Seq })
	return names
}

// stateKey returns the node's journal key, <root>/state/journal.key,
// creating it (32 random bytes, 0600, in a 0700 directory) on first use.
// With create unset a missing key is nil.
func (e *Engine) stateKey(create bool) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.key != nil {
		return e.key, nil
	}
	if e.Root == "" {
		return nil, errors.New("the engine has no node root to keep its state in")
	}
	root, err := nofollow.Open(e.Root)
	if err != nil {
		if !create && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("node root: %w", err)
	}
	defer root.Close()
	var sd *nofollow.Dir
	if create {
		sd, err = root.MkdirAll("state", 0o700)
		if err == nil {
			err = tighten(root, "state", 0o700)
		}
	} else {
		sd, err = root.OpenDir("state")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	defer sd.Close()
	f, _, err := sd.OpenRegular(keyName)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		nf, err := sd.OpenFile(keyName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = nf.WriteString(hex.EncodeToString(k) + "\n")
			if err == nil {
				err = nf.Sync()
			}
			nf.Close()
		}
		if err == nil {
			e.key = k
			return k, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create the journal key: %w", err)
		}
		// Created by a concurrent apply: read theirs.
		f, _, err = sd.OpenRegular(keyName)
	}
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	defer f.Close()
	if err := checkOwn(f, sd.Path(keyName)); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 200))
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("journal key %s is damaged: every journal of the node is refused until it is restored (or the journals removed)", sd.Path(keyName))
	}
	e.key = k
	return k, nil
}

// adoptJournal re-keys the journal of a software directory unpacked from
// the binary cache at the path it was built at: its lines were
// authenticated by the builder's key, and the archive by the cache's
// signature, which the client checked before unpacking.
func (e *Engine) adoptJournal(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, ".slapnode", journalName)); err != nil {
		return nil
	}
	key, err := e.stateKey(true)
	if err != nil {
		return err
	}
	j, err := openJournal(journalSpec{stateDir: filepath.Join(dir, ".slapnode"), bind: "software:" + filepath.Base(dir),
		key: key, trusted: true, adopt: true, dirID: dirIdentity(dir), note: e.progress})
	if err != nil {
		return err
	}
	return j.close()
}

// StateDir is where the engine keeps the state of partition id on the node
// at root: a directory only the node's user writes, never inside the
// partition (whose user could plant links or edit records there).
func StateDir(root, id string) string {
	return filepath.Join(root, "state", "instance", id)
}

// ForgetInstance removes the state the engine keeps about a partition,
// for a partition emptied to be allocated again: its parts are gone, and
// a new instance there installs all of its own.
func (e *Engine) ForgetInstance(id string) error {
	if !validID(id) {
		return fmt.Errorf("invalid partition id %q", id)
	}
	root, err := nofollow.Open(e.Root)
	if err != nil {
		return err
	}
	defer root.Close()
	return root.RemoveAll(filepath.Join("state", "instance", id))
}

func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00")
}

// dirIdentity is device:inode of dir, and its birth time where the file
// system records one (statx): an inode number is reused as soon as a
// directory is deleted, so a directory deleted and made again may get the
// same one. "" when dir does not exist.
func dirIdentity(dir string) string {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil {
		return ""
	}
	id := fmt.Sprintf("%d:%d", unix.Mkdev(st.Dev_major, st.Dev_minor), st.Ino)
	if st.Mask&unix.STATX_BTIME != 0 {
		id += fmt.Sprintf(":%d.%09d", st.Btime.Sec, st.Btime.Nsec)
	}
	return id
}

// sameDir compares two directory identities. One recorded before birth
// times were (device:inode only) is compared on those: the journal then
// records the full identity, without starting afresh.
func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	pa, pb := strings.Split(a, ":"), strings.Split(b, ":")
	if len(pa) == 2 || len(pb) == 2 {
		return len(pa) >= 2 && len(pb) >= 2 && pa[0] == pb[0] && pa[1] == pb[1]
	}
	return false
}
