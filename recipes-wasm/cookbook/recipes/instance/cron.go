package instance

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// cronEntry writes CRON-ENTRIES/NAME holding "SCHEDULE COMMAND", as
// slapos.cookbook:cron.d does; time (systemd's calendar syntax) is turned
// into a crontab schedule when frequency is not given.
func cronEntry(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	name, err := opts.String("name")
	if err != nil {
		return recipe.Result{}, err
	}
	if name == "" || strings.ContainsRune(name, '/') {
		return recipe.Result{}, fmt.Errorf("option \"name\" %q must be a file name", name)
	}
	command, err := opts.String("command")
	if err != nil {
		return recipe.Result{}, err
	}
	dir, err := opts.String("cron-entries")
	if err != nil {
		return recipe.Result{}, err
	}
	schedule, err := opts.StringOr("frequency", "")
	if err != nil {
		return recipe.Result{}, err
	}
	if !opts.Has("frequency") {
		spec, err := opts.String("time")
		if err != nil {
			return recipe.Result{}, err
		}
		if schedule, err = SystemdToCron(spec); err != nil {
			return recipe.Result{}, fmt.Errorf("Invalid systemd calendar spec %q: %w", spec, err)
		}
	}
	path := filepath.Join(fsx.Resolve(ctx, dir), name)
	if err := fsx.WriteFile(ctx, path, []byte(schedule+" "+command+"\n"), 0o644); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": path}, Installed: []string{path}}, nil
}

var symbolic = map[string]string{
	"minutely": "* * * * *",
	"hourly":   "0 * * * *",
	"daily":    "0 0 * * *",
	"weekly":   "0 0 * * 0",
	"monthly":  "0 0 1 * *",
	"yearly":   "0 0 1 1 *",
}

var weekdays = func() map[string]int {
	m := map[string]int{}
	for i, d := range []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"} {
		m[d], m[d[:3]] = i, i
	}
	return m
}()

var errSpec = errors.New("not a calendar spec slapos.cookbook can turn into a crontab schedule")

// SystemdToCron turns a systemd.time(7) calendar spec into a crontab
// schedule the way slapos.cookbook:cron.d does: the shorthands (daily…),
// or [WEEKDAYS] [[*-]MONTH-DAY] [HOUR:MINUTE[:00]], without years, seconds,
// or a weekday together with a day of the month.
func SystemdToCron(spec string) (string, error) {
	if s, ok := symbolic[spec]; ok {
		return s, nil
	}
	if strings.TrimSpace(spec) == "" {
		return "", errSpec
	}
	words := strings.Split(spec, " ")
	dow := "*"
	if d, ok := weekdayList(words[0]); ok {
		dow = d
		words = words[1:]
	}
	day, clock := "*-*", "0:0"
	if len(words) > 0 {
		day, words = words[0], words[1:]
	}
	switch {
	case len(words) == 1:
		clock = words[0]
	case len(words) > 1:
		return "", errSpec
	case strings.Contains(day, ":"):
		clock, day = day, "*-*"
	}
	dayParts := strings.Split(day, "-")
	timeParts := strings.Split(clock, ":")
	if len(dayParts) > 2 {
		if dayParts[0] != "*" {
			return "", fmt.Errorf("years are not supported")
		}
		dayParts = dayParts[1:]
	}
	if len(dayParts) != 2 || len(timeParts) < 2 || len(timeParts) > 3 {
		return "", errSpec
	}
	if dow != "*" && dayParts[1] != "*" {
		return "", fmt.Errorf("a weekday and a day of the month together are not supported")
	}
	if len(timeParts) == 3 {
		if s, err := strconv.Atoi(timeParts[2]); err != nil || s != 0 {
			return "", fmt.Errorf("seconds are not supported")
		}
	}
	fields := []string{timeParts[1], timeParts[0], dayParts[1], dayParts[0], dow}
	ranges := [][2]int{{0, 60}, {0, 24}, {1, 31}, {1, 12}}
	for i, r := range ranges {
		if fields[i] == "*" {
			continue
		}
		for _, item := range strings.Split(fields[i], ",") {
			first, step, hasStep := strings.Cut(item, "/")
			start, err := strconv.Atoi(first)
			if err != nil {
				return "", errSpec
			}
			a := start - r[0]
			if a < 0 || a >= r[1] {
				return "", fmt.Errorf("%d is out of range", start)
			}
			if !hasStep {
				continue
			}
			b, err := strconv.Atoi(step)
			if err != nil || b <= 0 {
				return "", errSpec
			}
			// A repetition becomes START-LAST/STEP within the field's range.
			last := (r[1] - a - 1) / b * b
			if last == 0 {
				return "", errSpec
			}
			fields[i] = fmt.Sprintf("%d-%d/%d", start, start+last, b)
		}
	}
	return strings.Join(fields, " "), nil
}

// weekdayList reads "Mon,Wed-Fri" as crontab weekdays ("1,3-5"); ok is
// false when the word is not a list of weekdays.
func weekdayList(word string) (string, bool) {
	var items []string
	for _, item := range strings.Split(word, ",") {
		if item == "" {
			continue
		}
		var nums []string
		for _, d := range strings.SplitN(item, "-", 2) {
			n, ok := weekdays[strings.ToLower(d)]
			if !ok {
				return "", false
			}
			nums = append(nums, strconv.Itoa(n))
		}
		items = append(items, strings.Join(nums, "-"))
	}
	if len(items) == 0 {
		return "", false
	}
	sort.Strings(items)
	return strings.Join(items, ","), true
}
