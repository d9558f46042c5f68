package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestJournalHandler: under journald each line starts with its syslog
// priority and has no timestamp (journald stamps it), attributes and
// groups kept, records under the level dropped.
func TestJournalHandler(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newLogHandler(&buf, logJournal, slog.LevelInfo))
	l.Debug("hidden")
	l.Info("serving", "root", "/srv/slapnode")
	c := l.With("component", "supervisor").WithGroup("svc")
	c.Warn("service exited", "exit_code", 1)
	l.Error("cannot bang", "err", "refused")
	want := `<6>level=INFO msg=serving root=/srv/slapnode
<4>level=WARN msg="service exited" component=supervisor svc.exit_code=1
<3>level=ERROR msg="cannot bang" err=refused
`
	if buf.String() != want {
		t.Errorf("journal lines:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestChooseLogFormat: journal only on the very stream JOURNAL_STREAM
// names; timestamps on a terminal or in a file; none in another pipe.
func TestChooseLogFormat(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	t.Setenv("JOURNAL_STREAM", "")
	if got := chooseLogFormat(f); got != logText {
		t.Errorf("a file: %s", got)
	}
	if got := chooseLogFormat(w); got != logPlain {
		t.Errorf("a pipe: %s", got)
	}
	if got := chooseLogFormat(&bytes.Buffer{}); got != logText {
		t.Errorf("a buffer: %s", got)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if got := chooseLogFormat(f); got != logJournal {
		t.Errorf("the journal's stream: %s", got)
	}
	if got := chooseLogFormat(w); got != logPlain {
		t.Errorf("another stream under journald: %s", got)
	}
}

// TestLogFlags: bad values are usage errors naming the choices.
func TestLogFlags(t *testing.T) {
	for _, tc := range []struct{ format, level, want string }{
		{"xml", "info", "give auto, text, plain, journal or json"},
		{"json", "loud", "give debug, info, warn or error"},
	} {
		lf := logFlags{format: tc.format, level: tc.level}
		_, err := lf.logger(&cliEnv{stderr: &bytes.Buffer{}})
		var ee *exitError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

// BenchmarkLogHandlers: what a record costs in each format (the journal
// format is the text handler plus a prefix and a copy).
func BenchmarkLogHandlers(b *testing.B) {
	for _, f := range []string{logText, logPlain, logJournal, logJSON} {
		b.Run(f, func(b *testing.B) {
			l := slog.New(newLogHandler(io.Discard, f, slog.LevelInfo)).With("component", "supervisor")
			b.ReportAllocs()
			for b.Loop() {
				l.Warn("service exited", "partition", "slappart0", "service", "web", "pid", 812, "exit_code", 1, "next", "restarting in 1s (failure 1 of at most 10)")
			}
		})
	}
}
