// Package suggest finds the name someone most likely meant: the known name
// nearest to a misspelled one, for "unknown key "inferenecs" (did you mean
// "inferences"?)" in every place that checks names.
package suggest

import "strings"

// Nearest returns the name of known closest to s: an abbreviation or a
// longer spelling of it (from 3 characters), else the nearest by edit
// distance if the slip is small for the length; "" when none is close.
func Nearest(s string, known []string) string {
	best, bestD := "", len(s)/3+2
	for _, k := range known {
		d := Distance(s, k)
		if len(s) >= 3 && (strings.HasPrefix(k, s) || strings.HasPrefix(s, k)) {
			d = 1
		}
		if d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is Levenshtein's edit distance between a and b (bytes).
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
