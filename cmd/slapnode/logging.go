package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"
)

// The log formats of the long-running commands (node run, master, cache
// serve), chosen with --log-format; docs/services.md §Logs shows each.
const (
	logAuto    = "auto"    // journal under journald, text elsewhere (see chooseLogFormat)
	logText    = "text"    // logfmt (key=value) with a timestamp
	logPlain   = "plain"   // logfmt without a timestamp: what collects the output stamps it
	logJournal = "journal" // plain, each line prefixed with its syslog priority <N>
	logJSON    = "json"    // one JSON object per line
)

// logFlags are --log-format and --log-level.
type logFlags struct {
	format, level string
}

func (l *logFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", logAuto, "log format: auto, text, plain, journal, json")
	fs.StringVar(&l.level, "log-level", "info", "lowest level logged: debug, info, warn, error")
}

// defaults fills the flags not given on the command line from a
// configuration (node.hcl's daemon block).
func (l *logFlags) defaults(fs *flag.FlagSet, format, level string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["log-format"] && format != "" {
		l.format = format
	}
	if !set["log-level"] && level != "" {
		l.level = level
	}
}

// logger builds the command's logger, writing to env.stderr.
func (l *logFlags) logger(env *cliEnv) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--log-level %q: give debug, info, warn or error", l.level))
	}
	format := l.format
	switch format {
	case logAuto:
		format = chooseLogFormat(env.stderr)
	case logText, logPlain, logJournal, logJSON:
	default:
		return nil, withCode(exitUsage, fmt.Errorf("--log-format %q: give auto, text, plain, journal or json", l.format))
	}
	return slog.New(newLogHandler(env.stderr, format, level)), nil
}

// chooseLogFormat picks the format for w when none is asked for: journal
// when w is the stream journald gave the process (systemd sets
// JOURNAL_STREAM to its device and inode, systemd.exec(5)), which stamps
// and ranks each line itself; text with timestamps on a terminal or in a
// file (the daemon.log of a daemon that apply started); plain on another
// pipe or socket, whose reader (a container runtime, a process manager)
// stamps lines itself.
func chooseLogFormat(w io.Writer) string {
	f, ok := w.(*os.File)
	if !ok {
		return logText
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return logText
	}
	if js := os.Getenv("JOURNAL_STREAM"); js != "" {
		dev, ino, ok := strings.Cut(js, ":")
		d, err1 := strconv.ParseUint(dev, 10, 64)
		i, err2 := strconv.ParseUint(ino, 10, 64)
		if ok && err1 == nil && err2 == nil && d == st.Dev && i == st.Ino {
			return logJournal
		}
	}
	if isatty.IsTerminal(f.Fd()) || st.Mode&unix.S_IFMT == unix.S_IFREG {
		return logText
	}
	return logPlain
}

// newLogHandler returns the slog handler of a format.
func newLogHandler(w io.Writer, format string, level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case logJSON:
		return slog.NewJSONHandler(w, opts)
	case logText:
		return slog.NewTextHandler(w, opts)
	}
	// plain and journal: no timestamp, the collector adds its own.
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	if format == logPlain {
		return slog.NewTextHandler(w, opts)
	}
	s := &journalShared{out: w}
	return &journalHandler{s: s, inner: slog.NewTextHandler(&s.buf, opts)}
}

// journalHandler prefixes each record with its syslog priority, <3> to
// <7>, which journald reads as the line's PRIORITY (SyslogLevelPrefix=,
// on by default), so that journalctl -p warning and the colours work.
type journalHandler struct {
	s     *journalShared
	inner slog.Handler // writes into s.buf
}

// journalShared is the buffer and lock shared by a handler and those made
// from it by WithAttrs and WithGroup.
type journalShared struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.s.buf.Reset()
	h.s.buf.WriteString(syslogPriority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.s.out.Write(h.s.buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{s: h.s, inner: h.inner.WithAttrs(as)}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{s: h.s, inner: h.inner.WithGroup(name)}
}

// syslogPriority is sd-daemon(3)'s prefix for a level.
func syslogPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// logfAdapter gives a package that takes a printf-style function (the
// promise scheduler) a logger's level.
func logfAdapter(l *slog.Logger, level slog.Level) func(string, ...any) {
	return func(format string, args ...any) {
		l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}
