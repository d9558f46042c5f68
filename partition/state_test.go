package partition

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// testSpec is the journal of a target "instance:s" whose state is dir.
func testSpec(dir string) journalSpec {
	return journalSpec{stateDir: dir, bind: "instance:s", key: testKey}
}

func TestJournalReplayTornTailAndCompaction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	j, err := openJournal(testSpec(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if err := j.set(n, &PartRecord{Recipe: "m:r", Signature: n, Options: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.del("b"); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("state directory mode %v", st.Mode())
	}
	if st, _ := os.Stat(filepath.Join(dir, "parts.journal")); st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v", st.Mode())
	}
	// A killed writer leaves half a line.
	f, _ := os.OpenFile(filepath.Join(dir, "parts.journal"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`0badc0de {"op":"set","part":"d","rec":{"sig`)
	f.Close()

	j, err = openJournal(testSpec(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.parts) != 2 || j.parts["a"] == nil || j.parts["c"] == nil {
		t.Fatalf("replayed parts: %v", j.parts)
	}
	if order := j.byReverseSeq([]string{"a", "c"}); order[0] != "c" {
		t.Fatalf("reverse order: %v", order)
	}
	// New records follow the repaired log and survive a reopen.
	j.set("e", &PartRecord{Signature: "e"})
	for i := 0; i < 40; i++ {
		j.set("a", &PartRecord{Signature: "a2"})
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	j, err = openJournal(testSpec(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.parts) != 3 || j.parts["e"] == nil || j.parts["a"].Signature != "a2" {
		t.Fatalf("after reopen: %v", j.parts)
	}
	if j.lines != 3 {
		t.Fatalf("log not compacted: %d lines", j.lines)
	}
	j.close()
	// A damaged complete line is refused, not skipped: the journal says
	// what root deletes.
	os.WriteFile(filepath.Join(dir, "parts.journal"), []byte("zz\n"), 0o600)
	if _, err := openJournal(testSpec(dir)); !errors.Is(err, errForged) {
		t.Fatalf("garbage journal: %v", err)
	}
}

// Finding #3: a record with a computable checksum, or authenticated by
// another key, or bound to another target, is refused with an error that
// says so.
func TestJournalRefusesForgedLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	j, err := openJournal(testSpec(dir))
	if err != nil {
		t.Fatal(err)
	}
	j.set("a", &PartRecord{Signature: "a", Installed: []string{"/p/etc/a"}})
	j.close()
	good, _ := os.ReadFile(filepath.Join(dir, "parts.journal"))

	body := `{"op":"set","part":"ghost","rec":{"recipe":"m:r","installed":["/p/l/tree"],"seq":9}}`
	other := &journal{bind: "instance:s"}
	other.mac = hmac.New(sha256.New, []byte("another key, another node......"))
	otherBind := &journal{bind: "instance:other"}
	otherBind.mac = hmac.New(sha256.New, testKey)
	edited := strings.Replace(string(good), `/p/etc/a`, `/p/l/tre`, 1)
	for name, data := range map[string]string{
		"crc":         string(good) + fmt.Sprintf("%08x %s\n", crc32.ChecksumIEEE([]byte(body)), body),
		"other key":   string(good) + string(other.sum([]byte(body))) + " " + body + "\n",
		"other bind":  string(good) + string(otherBind.sum([]byte(body))) + " " + body + "\n",
		"edited":      edited,
		"bare json":   string(good) + body + "\n",
		"first lines": fmt.Sprintf("%08x %s\n", crc32.ChecksumIEEE([]byte(body)), body) + string(good),
	} {
		os.WriteFile(filepath.Join(dir, "parts.journal"), []byte(data), 0o600)
		_, err := openJournal(testSpec(dir))
		if !errors.Is(err, errForged) || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%s: %v", name, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "parts.journal")); string(b) != data {
			t.Errorf("%s: the refused journal was modified", name)
		}
	}
}

// Finding #1: the state file must not be a hard link (appends would land in
// the other file) nor be reached through a link.
func TestJournalRefusesLinks(t *testing.T) {
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	os.WriteFile(victim, []byte("secret"), 0o600)
	dir := filepath.Join(base, "s")
	os.MkdirAll(dir, 0o700)
	if err := os.Link(victim, filepath.Join(dir, "parts.journal")); err != nil {
		t.Fatal(err)
	}
	if _, err := openJournal(testSpec(dir)); err == nil || !strings.Contains(err.Error(), "hard links") {
		t.Fatalf("hard-linked journal: %v", err)
	}
	os.Remove(filepath.Join(dir, "parts.journal"))
	os.Symlink(victim, filepath.Join(dir, "parts.journal"))
	if _, err := openJournal(testSpec(dir)); err == nil || !strings.Contains(err.Error(), "link") {
		t.Fatalf("symlinked journal: %v", err)
	}
	os.Remove(filepath.Join(dir, "parts.journal"))
	os.Remove(dir)
	os.Symlink(base, dir)
	if _, err := openJournal(testSpec(dir)); err == nil || !strings.Contains(err.Error(), "link") {
		t.Fatalf("symlinked state directory: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret" {
		t.Fatalf("victim changed: %q", b)
	}
}

// legacyJournal writes an older version's (checksummed) journal in
// part/.slapnode.
func legacyJournal(t *testing.T, part string, recs map[string]*PartRecord) {
	t.Helper()
	os.MkdirAll(filepath.Join(part, ".slapnode"), 0o750)
	var b strings.Builder
	for name, r := range recs {
		body, _ := json.Marshal(journalLine{Op: "set", Part: name, Rec: r})
		fmt.Fprintf(&b, "%08x %s\n", crc32.ChecksumIEEE(body), body)
	}
	if err := os.WriteFile(filepath.Join(part, ".slapnode", "parts.journal"), []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(part, ".slapnode", "connection.json"), []byte("{}"), 0o640)
}

// An older version's journal in the partition is migrated once, keeping
// only installed paths inside the partition, then removed from there.
func TestJournalMigratesLegacyState(t *testing.T) {
	base := t.TempDir()
	part, state := filepath.Join(base, "part"), filepath.Join(base, "state", "s")
	os.MkdirAll(filepath.Join(base, "state"), 0o700)
	legacyJournal(t, part, map[string]*PartRecord{
		"a": {Recipe: "m:r", Signature: "sa", Installed: []string{part + "/etc/a", "/etc/passwd", part + "/../x"}, Seq: 1},
		"b": {Recipe: "m:r", Signature: "sb", Seq: 2},
	})
	s := testSpec(state)
	s.legacy = part
	var notes []string
	s.note = func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	// A plan reads it and changes nothing.
	s.plan = true
	j, err := openJournal(s)
	if err != nil || len(j.parts) != 2 {
		t.Fatalf("plan: %v %v", j.parts, err)
	}
	j.close()
	if _, err := os.Stat(filepath.Join(part, ".slapnode", "parts.journal")); err != nil {
		t.Fatal("a plan removed the old journal")
	}
	s.plan = false
	if j, err = openJournal(s); err != nil {
		t.Fatal(err)
	}
	if len(j.parts) != 2 || j.parts["b"].Signature != "sb" || len(j.parts["a"].Installed) != 1 || j.parts["a"].Installed[0] != part+"/etc/a" {
		t.Fatalf("migrated: %+v", j.parts["a"])
	}
	j.set("c", &PartRecord{Signature: "sc"})
	j.close()
	if _, err := os.Lstat(filepath.Join(part, ".slapnode")); !os.IsNotExist(err) {
		t.Fatalf("old state left in the partition: %v", err)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], "migrated") {
		t.Fatalf("notes: %q", notes)
	}
	j, err = openJournal(s)
	if err != nil || len(j.parts) != 3 {
		t.Fatalf("reopened: %v %v", j.parts, err)
	}
	j.close()
}

// Finding #1 on a node not migrated yet: the old journal is read without
// following links, and only when it is the node's own single-link file.
func TestJournalMigrationRefusesPlantedFiles(t *testing.T) {
	for _, plant := range []string{"symlinked file", "symlinked dir", "hard link", "other owner"} {
		t.Run(plant, func(t *testing.T) {
			base := t.TempDir()
			part, state := filepath.Join(base, "part"), filepath.Join(base, "state", "s")
			os.MkdirAll(filepath.Join(base, "state"), 0o700)
			victims := filepath.Join(base, "victims")
			legacyJournal(t, victims, map[string]*PartRecord{"a": {Signature: "sa", Installed: []string{part + "/etc/a"}}})
			vj := filepath.Join(victims, ".slapnode", "parts.journal")
			before, _ := os.ReadFile(vj)
			os.MkdirAll(filepath.Join(part, ".slapnode"), 0o755)
			switch plant {
			case "symlinked file":
				os.Symlink(vj, filepath.Join(part, ".slapnode", "parts.journal"))
			case "symlinked dir":
				os.Remove(filepath.Join(part, ".slapnode"))
				os.Symlink(filepath.Join(victims, ".slapnode"), filepath.Join(part, ".slapnode"))
			case "hard link":
				if err := os.Link(vj, filepath.Join(part, ".slapnode", "parts.journal")); err != nil {
					t.Fatal(err)
				}
			case "other owner":
				if os.Geteuid() != 0 {
					t.Skip("giving a file away needs root")
				}
				os.WriteFile(filepath.Join(part, ".slapnode", "parts.journal"), before, 0o644)
				os.Chown(filepath.Join(part, ".slapnode", "parts.journal"), 65534, 65534)
			}
			s := testSpec(state)
			s.legacy = part
			j, err := openJournal(s)
			if err != nil {
				t.Fatal(err)
			}
			if len(j.parts) != 0 {
				t.Fatalf("a planted journal was migrated: %v", j.parts)
			}
			j.set("x", &PartRecord{})
			j.close()
			if after, _ := os.ReadFile(vj); string(after) != string(before) {
				t.Fatalf("victim changed: %q", after)
			}
		})
	}
}

// A journal about a directory deleted and created again (a partition
// purged and formatted anew) is stale: its parts are not there any more.
func TestJournalStaleDirectory(t *testing.T) {
	base := t.TempDir()
	target, state := filepath.Join(base, "target"), filepath.Join(base, "s")
	os.MkdirAll(target, 0o755)
	s := testSpec(state)
	s.dirID = dirIdentity(target)
	j, err := openJournal(s)
	if err != nil {
		t.Fatal(err)
	}
	j.set("a", &PartRecord{Signature: "a"})
	j.close()
	if j, err = openJournal(s); err != nil || len(j.parts) != 1 {
		t.Fatalf("same directory: %v %v", j.parts, err)
	}
	j.close()
	os.Remove(target)
	os.MkdirAll(filepath.Join(base, "other"), 0o755) // take the inode number
	os.MkdirAll(target, 0o755)
	s.dirID = dirIdentity(target)
	if j, err = openJournal(s); err != nil || len(j.parts) != 0 {
		t.Fatalf("recreated directory: %v %v", j.parts, err)
	}
	j.close()
}

// The journal key is created once, 0600 in a 0700 directory, and reused.
func TestStateKey(t *testing.T) {
	root := t.TempDir()
	e := &Engine{Root: root}
	if k, err := e.stateKey(false); err != nil || k != nil {
		t.Fatalf("plan created a key: %v %v", k, err)
	}
	k, err := e.stateKey(true)
	if err != nil || len(k) != 32 {
		t.Fatalf("key: %v %v", k, err)
	}
	st, _ := os.Stat(filepath.Join(root, "state", "journal.key"))
	dst, _ := os.Stat(filepath.Join(root, "state"))
	if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
		t.Fatalf("modes %v %v", st.Mode(), dst.Mode())
	}
	k2, err := (&Engine{Root: root}).stateKey(false)
	if err != nil || string(k2) != string(k) {
		t.Fatalf("reread: %v", err)
	}
}

// A software directory unpacked from the binary cache at the path it was
// built at keeps the builder's journal, authenticated by the builder's
// key: it is re-keyed, not refused.
func TestAdoptJournalFromAnotherNode(t *testing.T) {
	root := t.TempDir()
	sw := filepath.Join(root, "software", "abc")
	os.MkdirAll(sw, 0o755)
	s := journalSpec{stateDir: filepath.Join(sw, ".slapnode"), bind: "software:abc", key: []byte("the builder's key..............."), trusted: true, dirID: "1:2"}
	j, err := openJournal(s)
	if err != nil {
		t.Fatal(err)
	}
	j.set("a", &PartRecord{Signature: "a"})
	j.close()
	e := &Engine{Root: root}
	key, _ := e.stateKey(true)
	s.key, s.dirID = key, dirIdentity(sw)
	if _, err := openJournal(s); !errors.Is(err, errForged) {
		t.Fatalf("a foreign journal was accepted: %v", err)
	}
	if err := e.adoptJournal(sw); err != nil {
		t.Fatal(err)
	}
	j, err = openJournal(s)
	if err != nil || len(j.parts) != 1 || j.parts["a"] == nil {
		t.Fatalf("adopted: %v %v", j.parts, err)
	}
	j.close()
}

// A journal whose directory identity was recorded as device:inode only
// (before birth times) is kept when that directory is still there, and
// refused when only the inode number matches another directory's.
func TestSameDirIdentity(t *testing.T) {
	dir := t.TempDir()
	full := dirIdentity(dir)
	parts := strings.Split(full, ":")
	old := parts[0] + ":" + parts[1]
	if !sameDir(old, full) || !sameDir(full, full) {
		t.Fatalf("%q and %q are the same directory", old, full)
	}
	if len(parts) == 3 && sameDir(full, old+":1.000000000") {
		t.Fatalf("a different birth time is another directory")
	}
	if sameDir("1:2", "1:3") || sameDir("1:2:3.0", "2:2:3.0") {
		t.Fatal("different inodes or devices are different directories")
	}
}

// TestJournalLineFormat checks that a line is the HMAC, a space and the
// JSON json.Marshal writes of the record, as older versions wrote and read
// them, appended to what the buffer holds (compaction).
func TestJournalLineFormat(t *testing.T) {
	j, err := openJournal(testSpec(filepath.Join(t.TempDir(), "s")))
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	lines := []journalLine{
		{Op: "dir", Dir: "65024:1:2.3"},
		{Op: "del", Part: "gone"},
		{Op: "set", Part: "p<1>", Rec: &PartRecord{Recipe: "cookbook:template", Module: strings.Repeat("a", 64), Signature: strings.Repeat("b", 64),
			Options: json.RawMessage(`{"inline":"x\u003c\u2028","output":"/d/t"}`), Outputs: json.RawMessage(`{"output":"/d/t"}`),
			Installed: []string{"/d/t", "/d/&"}, Deps: []string{"part.a"}, Seq: 7}},
		{Op: "set", Part: "big", Rec: &PartRecord{Recipe: "r:r", Options: json.RawMessage(`{"a":"` + strings.Repeat("z", 5000) + `"}`)}},
	}
	var want, got []byte
	for _, l := range lines {
		body, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, j.sum(body)...)
		want = append(want, ' ')
		want = append(want, body...)
		want = append(want, '\n')
		if got, err = j.format(got, l); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("lines\n got %s\nwant %s", got, want)
	}
}
