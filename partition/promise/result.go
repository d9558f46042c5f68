package promise

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/internal/nofollow"
)

// Result types, as SlapOS's loader accepts them.
const (
	TestResult    = "Test Result"
	AnomalyResult = "Anomaly Result"
)

// Messages of SlapOS's promise launcher.
const (
	msgBothDisabled = "It's not allowed to disable both Test and Anomaly in promise!"
	msgNoResult     = "No result found!"
	maxMessage      = 5000 // a result message keeps its last 5000 characters
	maxLogBytes     = 1 << 20
)

// TimeoutMessage is the message of a promise killed at its timeout.
func TimeoutMessage(timeout time.Duration) string {
	return fmt.Sprintf("Error: Promise timed out after %d seconds", int(math.Ceil(timeout.Seconds())))
}

// Result is the outcome of one promise in one run.
type Result struct {
	Partition string        `json:"partition"`
	Name      string        `json:"name"`
	Check     string        `json:"check"`
	Type      string        `json:"type"` // TestResult or AnomalyResult
	OK        bool          `json:"ok"`
	Message   string        `json:"message"`
	Date      time.Time     `json:"date"`
	Duration  time.Duration `json:"duration_ns"`
	// Skipped: the promise does not run in this mode (test = false or
	// anomaly = false); nothing was written.
	Skipped bool `json:"skipped,omitempty"`
	// Cached: not due yet (periodicity); this is the last saved result.
	Cached   bool      `json:"cached,omitempty"`
	TimedOut bool      `json:"timed_out,omitempty"`
	Legacy   bool      `json:"legacy,omitempty"` // an etc/promise executable
	NextRun  time.Time `json:"next_run"`
	// CanBang: a failed anomaly result of a promise allowed to bang.
	CanBang bool `json:"-"`
}

// Failed reports a result that counts as a failure (a skipped promise does not).
func (r *Result) Failed() bool { return !r.OK && !r.Skipped }

// Files of a partition's promise state, as SlapOS lays them out, relative
// to the partition directory. The partition's user owns that directory and
// may plant anything there, so the runner (root on a formatted node)
// reaches them only through package nofollow: never through a link, never
// blocking on a FIFO, never appending to a hard link of another owner's
// file.
func resultRel(title string) string {
	return filepath.Join(".slapgrid", "promise", "result", title+".status.json")
}
func logRel(title string) string   { return filepath.Join(".slapgrid", "promise", "log", title+".log") }
func cacheRel(title string) string { return filepath.Join(".slapgrid", "promise", "cache", title) }

func resultPath(part, title string) string { return filepath.Join(part, resultRel(title)) }
func logPath(part, title string) string    { return filepath.Join(part, logRel(title)) }
func cachePath(part, title string) string  { return filepath.Join(part, cacheRel(title)) }

// maxStateFile bounds what the runner reads of a result or cache file.
const maxStateFile = 1 << 20

// openPart opens a partition directory; its parent (the instance root) is
// the node's.
func openPart(part string) (*nofollow.Dir, error) { return nofollow.OpenNoFollow(part) }

// statusFile renders a result exactly as SlapOS's
// json.dump(PromiseQueueResult.serialize()) does: one line, keys in this
// order, ", " and ": " separators, non-ASCII escaped.
func statusFile(title, name, path string, execSeconds float64, typ string, failed bool, date time.Time, message string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"title": %s, "name": %s, "path": %s, "execution-time": %s, "result": {"type": %s, "failed": %t, "date": %s, "message": %s}}`,
		pyString(title), pyString(name), pyString(path), pyFloat(execSeconds), pyString(typ), failed,
		pyString(date.UTC().Format("2006-01-02T15:04:05+0000")), pyString(message))
	return b.Bytes()
}

// pyString quotes s as Python's json.dumps with ensure_ascii does.
func pyString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (r >= 0x7f && r < 0x10000):
				if r == 0x7f {
					b.WriteRune(r)
					continue
				}
				fmt.Fprintf(&b, `\u%04x`, r)
			case r >= 0x10000:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pyFloat writes f as Python's repr does for the values we produce
// (always a decimal point).
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// savedResult is what a status file holds (the fields the runner reads back).
type savedResult struct {
	Title         string  `json:"title"`
	Name          string  `json:"name"`
	Path          string  `json:"path"`
	ExecutionTime float64 `json:"execution-time"`
	Result        struct {
		Type    string `json:"type"`
		Failed  bool   `json:"failed"`
		Date    string `json:"date"`
		Message string `json:"message"`
	} `json:"result"`
}

// ReadResult reads the saved result of promise title in a partition.
func ReadResult(partitionDir, title string) (*Result, error) {
	d, err := openPart(partitionDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	b, err := d.ReadFile(resultRel(title), maxStateFile)
	if err != nil {
		return nil, err
	}
	var s savedResult
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", resultPath(partitionDir, title), err)
	}
	date, _ := time.Parse("2006-01-02T15:04:05-0700", s.Result.Date)
	return &Result{Name: s.Title, Type: s.Result.Type, OK: !s.Result.Failed, Message: s.Result.Message, Date: date,
		Duration: time.Duration(s.ExecutionTime * float64(time.Second))}, nil
}

// writeFile writes data at rel below the partition via a temporary file
// and a rename, so that readers never see a partial file. Not fsynced, as
// SlapOS: the next run rewrites it.
func writeFile(part, rel string, data []byte, uid, gid int) error {
	d, err := openPart(part)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := mkdirOwned(d, filepath.Dir(rel), uid, gid); err != nil {
		return err
	}
	return atomicfile.ReplaceIn(d, rel, data, 0o644, uid, gid)
}

// mkdirOwned creates rel (and parents) below d and hands the ones it
// creates to the partition's owner, as SlapOS chowns the result directory.
// An existing component must be a directory, not a link.
func mkdirOwned(d *nofollow.Dir, rel string, uid, gid int) error {
	cur := ""
	for _, c := range strings.Split(filepath.ToSlash(rel), "/") {
		cur = filepath.Join(cur, c)
		st, err := d.Lstat(cur)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("create %s: %w", d.Path(cur), nofollow.ErrSymlink)
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		sub, err := d.MkdirAll(cur, 0o755)
		if err != nil {
			return fmt.Errorf("create %s: %w", d.Path(cur), err)
		}
		sub.Close()
		if uid >= 0 {
			if err := d.Lchown(cur, uid, gid); err != nil {
				return fmt.Errorf("give %s to the partition user: %w", d.Path(cur), err)
			}
		}
	}
	return nil
}

// partOwner is the uid owning a partition's files: uid, or this process's
// user on a rootless node.
func partOwner(uid int) int {
	if uid < 0 {
		return os.Geteuid()
	}
	return uid
}

// transactionID is GenericPromise's "<int(time)>-<randint(100,999)>",
// drawn again if it equals last: two senses in the same second would
// otherwise (one time in 900) read back as a single transaction.
func transactionID(t time.Time, last string) string {
	for {
		if id := fmt.Sprintf("%d-%d", t.Unix(), 100+rand.IntN(900)); id != last {
			return id
		}
	}
}

// lastTransactionID is the transaction id of the last line of the log at
// rel below d, if any.
func lastTransactionID(d *nofollow.Dir, rel string) string {
	f, st, err := d.OpenRegular(rel)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, min(st.Size(), 4096))
	if _, err := f.ReadAt(buf, st.Size()-int64(len(buf))); err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if m := logLine.FindStringSubmatch(lines[len(lines)-1]); m != nil {
		return m[3]
	}
	return ""
}

// appendLog records one sense in the promise log at rel below the
// partition, in GenericPromise's format: "%Y-%m-%d %H:%M:%S - LEVEL - <tid>
// - message", one line per line of the message. The log keeps its last half
// when it passes 1 MiB. A log that is not a regular file, or a hard link to
// a file of another owner, is refused: appending would write to that file.
func appendLog(part, rel string, t time.Time, ok bool, message string, uid, gid int) error {
	d, err := openPart(part)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := mkdirOwned(d, filepath.Dir(rel), uid, gid); err != nil {
		return err
	}
	level := "INFO"
	if !ok {
		level = "ERROR"
	}
	tid := transactionID(t, lastTransactionID(d, rel))
	stamp := t.Local().Format("2006-01-02 15:04:05")
	var b strings.Builder
	lines := strings.Split(strings.TrimRight(message, "\n"), "\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%s - %s - %s - %s\n", stamp, level, tid, strings.TrimRight(l, "\r"))
	}
	path := d.Path(rel)
	f, err := d.OpenFile(rel, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("promise log %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("promise log %s: %w", path, err)
	}
	if sys, isSys := st.Sys().(*syscall.Stat_t); !st.Mode().IsRegular() || (isSys && sys.Nlink > 1 && int(sys.Uid) != partOwner(uid)) {
		f.Close()
		return fmt.Errorf("promise log %s: not a regular file of the partition (a hard link or a special file): refusing to write to it", path)
	}
	fresh := st.Size() == 0
	_, werr := f.WriteString(b.String())
	var cherr error
	if fresh && uid >= 0 {
		cherr = f.Chown(uid, gid)
	}
	st, serr := f.Stat()
	cerr := f.Close()
	if err := errors.Join(werr, cherr, cerr); err != nil {
		return fmt.Errorf("promise log %s: %w", path, err)
	}
	if serr == nil && st.Size() > maxLogBytes {
		return trimLog(d, rel, uid, gid)
	}
	return nil
}

func trimLog(d *nofollow.Dir, rel string, uid, gid int) error {
	b, err := d.ReadFile(rel, 4*maxLogBytes)
	if err != nil {
		return fmt.Errorf("promise log %s: %w", d.Path(rel), err)
	}
	keep := b[max(0, len(b)-maxLogBytes/2):]
	if i := bytes.IndexByte(keep, '\n'); i >= 0 {
		keep = keep[i+1:]
	}
	return atomicfile.ReplaceIn(d, rel, keep, 0o644, uid, gid)
}

// logLine is GenericPromise's log parsing regular expression.
var logLine = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})\s+\-?\s*(\w+)\s+\-?\s+(\d+\-\d{3})\s+\-?\s*(.*)$`)

// transaction is one sense, read back from the log.
type transaction struct {
	date     time.Time
	failed   bool
	messages []string
}

// readHistory returns the senses of the promise log at rel below the
// partition, newest first, at most max of them. Only the log's tail is
// read: max senses never need more.
func readHistory(part, rel string, max int) ([]transaction, error) {
	d, err := openPart(part)
	if err != nil {
		return nil, fmt.Errorf("promise log: %w", err)
	}
	defer d.Close()
	path := d.Path(rel)
	f, st, err := d.OpenRegular(rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("promise log: %w", err)
	}
	defer f.Close()
	const tail = 256 << 10
	if st.Size() > tail {
		if _, err := f.Seek(st.Size()-tail, io.SeekStart); err != nil {
			return nil, fmt.Errorf("promise log %s: %w", path, err)
		}
	}
	var all []transaction
	var tids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		d, err := time.ParseInLocation("2006-01-02 15:04:05", strings.Join(strings.Fields(m[1]), " "), time.Local)
		if err != nil {
			continue
		}
		if n := len(tids); n == 0 || tids[n-1] != m[3] {
			tids = append(tids, m[3])
			all = append(all, transaction{date: d})
		}
		t := &all[len(all)-1]
		t.messages = append(t.messages, m[4])
		if m[2] == "ERROR" || m[2] == "CRITICAL" {
			t.failed = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("promise log %s: %w", path, err)
	}
	out := make([]transaction, 0, min(max, len(all)))
	for i := len(all) - 1; i >= 0 && len(out) < max; i-- {
		out = append(out, all[i])
	}
	return out, nil
}

// decide is GenericPromise's _test/_anomaly: among the newest resultCount
// senses not older than latestMinute (0 = any age), the result is OK when
// the latest one succeeded; otherwise it fails only if the failureAmount
// newest senses all failed. The message is the latest sense's.
func decide(hist []transaction, resultCount, failureAmount, latestMinute int, now time.Time) (ok bool, message string) {
	var recent []transaction
	for _, t := range hist {
		if latestMinute > 0 && now.Sub(t.date) > time.Duration(latestMinute)*time.Minute {
			break
		}
		if len(recent) == resultCount {
			break
		}
		recent = append(recent, t)
	}
	if len(recent) == 0 {
		return true, msgNoResult
	}
	message = strings.Join(recent[0].messages, "\n")
	if !recent[0].failed {
		return true, message
	}
	failures := 0
	for _, t := range recent {
		if !t.failed {
			break
		}
		failures++
	}
	return failures < failureAmount, message
}

// truncate keeps the last 5000 characters of a message, as SlapOS.
func truncate(msg string) string {
	r := []rune(msg)
	if len(r) <= maxMessage {
		return msg
	}
	return "..." + string(r[len(r)-maxMessage:])
}

// cache is SlapOS's periodicity record, .slapgrid/promise/cache/<title>.
type cache struct {
	IsTested          bool    `json:"is_tested"`
	IsAnomalyDetected bool    `json:"is_anomaly_detected"`
	Periodicity       float64 `json:"periodicity"` // minutes
	NextRunAfter      float64 `json:"next_run_after"`
	Timestamp         float64 `json:"timestamp"`
	ModuleFile        string  `json:"module_file"`
	ModuleFileMtime   float64 `json:"module_file_mtime"`
}

func readCache(part, rel string) (*cache, error) {
	d, err := openPart(part)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	b, err := d.ReadFile(rel, maxStateFile)
	if err != nil {
		return nil, err
	}
	var c cache
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func unixFloat(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
func fromUnixFloat(f float64) time.Time {
	return time.Unix(0, int64(f*1e9))
}
