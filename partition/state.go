package partition

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"

	"github.com/slapnode/slapnode/internal/atomicfile"
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
// append-only log of checksummed lines. Each change is one write(2) of one
// line, so a process killed at any point leaves a log whose every complete
// line is valid; a torn last line fails its checksum and is dropped. The
// log is fsync'd once per apply (Sync) rather than per part — a kill loses
// nothing (the kernel has the data), a power loss at worst forgets the last
// parts, which the next apply installs again. When the log grows past twice
// its live size it is compacted by an atomic rewrite.
type journal struct {
	path  string
	f     *os.File
	parts map[string]*PartRecord
	lines int
	seq   int64
}

type journalLine struct {
	Op   string      `json:"op"` // "set" or "del"
	Part string      `json:"part"`
	Rec  *PartRecord `json:"rec,omitempty"`
}

func openJournal(dir string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	j := &journal{path: filepath.Join(dir, "parts.journal"), parts: map[string]*PartRecord{}}
	data, err := os.ReadFile(j.path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read state: %w", err)
	}
	valid := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var l journalLine
		if len(line) < 10 || line[8] != ' ' {
			break
		}
		var sum uint32
		if _, err := fmt.Sscanf(string(line[:8]), "%08x", &sum); err != nil || crc32.ChecksumIEEE(line[9:]) != sum {
			break
		}
		if err := json.Unmarshal(line[9:], &l); err != nil {
			break
		}
		switch l.Op {
		case "set":
			if l.Rec != nil {
				j.parts[l.Part] = l.Rec
				j.seq = max(j.seq, l.Rec.Seq)
			}
		case "del":
			delete(j.parts, l.Part)
		}
		j.lines++
		valid += len(line) + 1
	}
	if valid < len(data) {
		// A torn tail from a killed apply: cut it so new lines follow
		// complete ones.
		if err := os.Truncate(j.path, int64(valid)); err != nil {
			return nil, fmt.Errorf("repair state: %w", err)
		}
	}
	j.f, err = os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	return j, nil
}

func (j *journal) append(l journalLine) error {
	body, err := json.Marshal(l)
	if err != nil {
		return err
	}
	line := make([]byte, 0, len(body)+10)
	line = fmt.Appendf(line, "%08x ", crc32.ChecksumIEEE(body))
	line = append(line, body...)
	line = append(line, '\n')
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

func (j *journal) compact() error {
	var buf bytes.Buffer
	names := make([]string, 0, len(j.parts))
	for n := range j.parts {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool { return j.parts[names[a]].Seq < j.parts[names[b]].Seq })
	for _, n := range names {
		body, err := json.Marshal(journalLine{Op: "set", Part: n, Rec: j.parts[n]})
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "%08x %s\n", crc32.ChecksumIEEE(body), body)
	}
	if err := atomicfile.Write(j.path, buf.Bytes(), 0o640); err != nil {
		return err
	}
	j.lines = len(names)
	return nil
}

// byReverseSeq lists part names, most recently installed first.
func (j *journal) byReverseSeq(names []string) []string {
	sort.Slice(names, func(a, b int) bool { return j.parts[names[a]].Seq > j.parts[names[b]].Seq })
	return names
}
