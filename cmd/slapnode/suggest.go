package main

import (
	"sort"
	"strings"

	"github.com/agext/levenshtein"
)

// closest returns the names nearest to typed: a small edit distance (a
// typo, swapped or missing letters), or typed as a prefix of exactly one
// name. Several equally close names are all returned, sorted.
func closest(typed string, names []string) []string {
	if typed == "" {
		return nil
	}
	// Ties go to the names of the typed length: a swap ("stauts") is
	// closer to "status" than to "start".
	type score struct{ d, dl int }
	less := func(a, b score) bool { return a.d < b.d || a.d == b.d && a.dl < b.dl }
	var best []string
	var bestS score
	seen := map[string]bool{}
	for _, n := range names {
		if n == typed || seen[n] {
			continue
		}
		seen[n] = true
		d := levenshtein.Distance(strings.ToLower(typed), strings.ToLower(n), nil)
		// Up to a third of the typed word may be wrong (two letters of
		// "sohp"), never the whole of a short name ("-x" is not "-v").
		if d > min(3, len(typed)/2) || d >= len(n) {
			continue
		}
		sc := score{d, max(len(n)-len(typed), len(typed)-len(n))}
		switch {
		case best == nil || less(sc, bestS):
			best, bestS = []string{n}, sc
		case sc == bestS:
			best = append(best, n)
		}
	}
	if best == nil && len(typed) >= 3 {
		for n := range seen {
			if strings.HasPrefix(n, typed) {
				best = append(best, n)
			}
		}
		if len(best) != 1 {
			best = nil
		}
	}
	sort.Strings(best)
	return best
}

// orList is "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
