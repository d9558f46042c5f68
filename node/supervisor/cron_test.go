package supervisor

import (
	"errors"
	"testing"
	"time"
)

func TestParseCronNext(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		expr, from, want string
	}{
		{"* * * * *", "2026-11-21 23:55", "2026-11-21 23:56"},
		{"0 * * * *", "2026-11-21 23:55", "2026-11-22 00:00"},
		{"@hourly", "2026-11-21 10:00", "2026-11-21 11:00"},
		{"@daily", "2026-11-21 10:00", "2026-11-22 00:00"},
		{"@weekly", "2026-11-21 10:00", "2026-11-22 00:00"}, // 2026-11-22 is a Sunday
		{"@monthly", "2026-11-21 10:00", "2026-12-01 00:00"},
		{"@yearly", "2026-11-21 10:00", "2027-01-01 00:00"},
		{"*/15 * * * *", "2026-11-21 10:07", "2026-11-21 10:15"},
		{"5-10/2 * * * *", "2026-11-21 10:07", "2026-11-21 10:09"},
		{"30/10 * * * *", "2026-11-21 10:55", "2026-11-21 11:30"},
		{"0 9-17 * * mon-fri", "2026-11-21 10:00", "2026-11-23 09:00"}, // Saturday → Monday
		{"0 0 * * 7", "2026-11-21 10:00", "2026-11-22 00:00"},          // 7 is Sunday
		{"0 0 1,15 * *", "2026-11-02 00:00", "2026-11-15 00:00"},
		{"0 0 29 feb *", "2026-01-01 00:00", "2028-02-29 00:00"},
		{"0 12 * JAN,jul *", "2026-08-01 00:00", "2027-01-01 12:00"},
		// Both day fields restricted: either matches (Vixie cron).
		{"0 0 13 * fri", "2026-11-01 00:00", "2026-11-06 00:00"},
		// Day-of-month restricted, weekday "*": only the day of month counts.
		{"0 0 13 * *", "2026-11-01 00:00", "2026-11-13 00:00"},
	}
	for _, c := range cases {
		cr, err := ParseCron(c.expr)
		if err != nil {
			t.Errorf("ParseCron(%q): %v", c.expr, err)
			continue
		}
		if got := cr.Next(utc(c.from)); !got.Equal(utc(c.want)) {
			t.Errorf("%q.Next(%s) = %s, want %s", c.expr, c.from, got.Format("2006-01-02 15:04 Mon"), c.want)
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
		"* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "a * * * *", "1,,2 * * * *",
		"* * * foo *", "@reboot", "@every 5m", "-1 * * * *", "1-2-3 * * * *",
	} {
		if _, err := ParseCron(expr); !errors.Is(err, ErrCron) {
			t.Errorf("ParseCron(%q) = %v, want an ErrCron", expr, err)
		}
	}
}

func TestCronNever(t *testing.T) {
	cr, err := ParseCron("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if got := cr.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); !got.IsZero() {
		t.Fatalf("February 30th fired at %s", got)
	}
}

// FuzzParseCron checks that the parser never panics and that whatever it
// accepts yields, through Next, a later time that Matches accepts.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 1-3 1,15 jan-mar mon-fri", "@daily", "0 0 29 2 *", "5/7 * * * 7", "1-59/58 */23 31 12 sat"} {
		f.Add(s, int64(1795000000))
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		cr, err := ParseCron(expr)
		if err != nil {
			if !errors.Is(err, ErrCron) {
				t.Fatalf("error %v does not wrap ErrCron", err)
			}
			return
		}
		from := time.Unix(unix%(1<<33), 0).UTC()
		next := cr.Next(from)
		if next.IsZero() {
			return
		}
		if !next.After(from) || next.Second() != 0 {
			t.Fatalf("%q.Next(%s) = %s: not a later whole minute", expr, from, next)
		}
		if !cr.Matches(next) {
			t.Fatalf("%q.Next(%s) = %s, which it does not match", expr, from, next)
		}
		if prev := next.Add(-time.Minute); prev.After(from) && cr.Matches(prev) {
			t.Fatalf("%q.Next(%s) = %s skipped %s", expr, from, next, prev)
		}
	})
}
