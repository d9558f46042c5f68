package partition

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestJournalReplayTornTailAndCompaction(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
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
	// A killed writer leaves half a line.
	f, _ := os.OpenFile(filepath.Join(dir, "parts.journal"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`0badc0de {"op":"set","part":"d","rec":{"sig`)
	f.Close()

	j, err = openJournal(dir)
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
	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if len(j.parts) != 3 || j.parts["e"] == nil || j.parts["a"].Signature != "a2" {
		t.Fatalf("after reopen: %v", j.parts)
	}
	if j.lines != 3 {
		t.Fatalf("log not compacted: %d lines", j.lines)
	}
	// A corrupted line in the middle stops the replay there rather than
	// inventing state.
	os.WriteFile(filepath.Join(dir, "parts.journal"), []byte("zz\n"), 0o640)
	j2, err := openJournal(dir)
	if err != nil || len(j2.parts) != 0 {
		t.Fatalf("garbage journal: %v %v", err, j2.parts)
	}
	j2.close()
}
