package main

import (
	"sort"
	"strings"

	"github.com/agext/levenshtein"
)

// closest returns the names nearest to typed: a small edit distance (a
// typo, a swapped or missing letter), or typed as a prefix of exactly one
// name. Several equally close names are all returned, sorted.
func closest(typed string, names []string) []string {
	if typed == "" {
		return nil
	}
	best, bestD := []string(nil), 0
	for _, n := range names {
		if n == typed {
			continue
		}
		d := levenshtein.Distance(strings.ToLower(typed), strings.ToLower(n), nil)
		if d > max(1, min(3, len(n)/3)) {
			continue
		}
		switch {
		case best == nil || d < bestD:
			best, bestD = []string{n}, d
		case d == bestD:
			best = append(best, n)
		}
	}
	if best == nil && len(typed) >= 3 {
		for _, n := range names {
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
