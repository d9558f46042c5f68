package supervisor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrCron is wrapped by every cron-expression parse error.
var ErrCron = errors.New("invalid cron expression")

// Cron is a parsed 5-field cron expression (minute hour day-of-month month
// day-of-week), as Vixie cron reads it.
type Cron struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	// Vixie cron: when both day fields are restricted, a day matches if
	// either does; when one is "*", only the other counts.
	domStar, dowStar bool
	expr             string
}

// String returns the expression as it was parsed.
func (c *Cron) String() string { return c.expr }

var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	// 7 is accepted as Sunday, as in every cron; it is folded onto 0.
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// ParseCron parses a cron expression: five fields separated by blanks, each a
// list of "*", "N", "N-M", with an optional "/STEP", month and weekday names
// (jan…dec, sun…sat), or one of @yearly @annually @monthly @weekly @daily
// @midnight @hourly.
func ParseCron(expr string) (*Cron, error) {
	spec := strings.TrimSpace(expr)
	if strings.HasPrefix(spec, "@") {
		m, ok := cronMacros[strings.ToLower(spec)]
		if !ok {
			return nil, fmt.Errorf("%w %q: unknown macro %s (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)", ErrCron, expr, spec)
		}
		spec = m
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return nil, fmt.Errorf("%w %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", ErrCron, expr, len(parts))
	}
	c := &Cron{expr: expr}
	dst := [5]*uint64{&c.minute, &c.hour, &c.dom, &c.month, &c.dow}
	for i, p := range parts {
		bits, err := parseCronField(p, cronFields[i])
		if err != nil {
			return nil, fmt.Errorf("%w %q: %s field %q: %v", ErrCron, expr, cronFields[i].name, p, err)
		}
		*dst[i] = bits
	}
	if c.dow&(1<<7) != 0 {
		c.dow = c.dow&^(1<<7) | 1
	}
	c.domStar = parts[2] == "*" || strings.HasPrefix(parts[2], "*/") && c.dom == fullBits(1, 31)
	c.dowStar = parts[4] == "*" || strings.HasPrefix(parts[4], "*/") && c.dow == fullBits(0, 6)
	return c, nil
}

func fullBits(lo, hi int) uint64 {
	var b uint64
	for i := lo; i <= hi; i++ {
		b |= 1 << i
	}
	return b
}

func parseCronField(s string, f cronField) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n <= 0 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepStr, f.max-f.min+1)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = f.min, f.max
			if f.max == 7 { // "*" in day-of-week is 0-6; 7 would duplicate Sunday
				hi = 6
			}
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, f); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = cronValue(b, f); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %s goes backwards", rng)
				}
			} else if hasStep {
				// "N/STEP" means from N to the end of the field.
				hi = f.max
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func cronValue(s string, f cronField) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%q is neither a number from %d to %d nor a name (%s)", s, f.min, f.max, strings.Join(f.names, " "))
		}
		return 0, fmt.Errorf("%q is not a number from %d to %d", s, f.min, f.max)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// Matches reports whether t (to the minute) is a time the expression selects.
func (c *Cron) Matches(t time.Time) bool {
	return c.minute&(1<<t.Minute()) != 0 && c.hour&(1<<t.Hour()) != 0 &&
		c.month&(1<<int(t.Month())) != 0 && c.dayMatches(t)
}

func (c *Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	default:
		return dom || dow
	}
}

// Next returns the first time strictly after t that the expression selects,
// in t's location, or the zero time if there is none within five years (as
// for "0 0 30 2 *", February 30th).
func (c *Cron) Next(t time.Time) time.Time {
	loc := t.Location()
	// Truncate works on absolute time, which is the same minute boundary in
	// every zone (offsets are whole minutes).
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<int(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if c.hour&(1<<t.Hour()) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			continue
		}
		if c.minute&(1<<t.Minute()) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}
