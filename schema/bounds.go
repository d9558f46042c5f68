package schema

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Input bounds (docs/parameters.md §5). encoding/json stops at 10,000 levels
// without crashing, but what reads the decoded documents recurses per
// level, and the JSON Schema library checks a schema against its
// meta-schema in time that grows faster than the square of its depth: a
// schema nested 400 levels took 1.5 s to compile, 9,000 levels (a 400 KB
// file) more than 10 minutes. The deepest SlapOS schema nests 15 levels.
const (
	// MaxJSONDepth bounds how deeply a schema, a software descriptor or a
	// parameter document nests objects and arrays.
	MaxJSONDepth = 64
	// MaxParamsSize bounds a parameter document (JSON, or SlapOS's instance
	// XML).
	MaxParamsSize = 8 << 20
	// MaxSchemaSize bounds one schema document or software descriptor,
	// local or remote (the largest SlapOS schema is 36 KB).
	MaxSchemaSize = 8 << 20
)

// ErrTooDeep is wrapped by the errors of documents nested deeper than
// MaxJSONDepth.
var ErrTooDeep = errors.New("nested too deeply")

// checkDepth scans JSON text, without decoding it, and reports where it
// first nests deeper than MaxJSONDepth: the JSON pointer of the value
// (its first segments when long) and the line and column. Invalid JSON is
// left to the decoder; the scan only needs to find brackets outside
// strings.
func checkDepth(data []byte) error {
	type level struct {
		key   string // object: the key being read or last read
		index int    // array: the element's index
		array bool
	}
	var stack []level
	inString, escaped, keyStart, expectKey := false, false, -1, false
	line, lineStart := 1, 0
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if keyStart >= 0 && len(stack) > 0 {
					stack[len(stack)-1].key = unquoteKey(data[keyStart : i+1])
					keyStart = -1
				}
			}
			continue
		}
		switch c {
		case '\n':
			line, lineStart = line+1, i+1
		case '"':
			inString = true
			if expectKey {
				keyStart, expectKey = i, false
			}
		case '{', '[':
			stack = append(stack, level{array: c == '['})
			expectKey = c == '{'
			if len(stack) > MaxJSONDepth {
				return fmt.Errorf("%w: more than %d levels of objects and arrays at %s (line %d, column %d)",
					ErrTooDeep, MaxJSONDepth, pointerOf(stack[:len(stack)-1], func(l level) string {
						if l.array {
							return strconv.Itoa(l.index)
						}
						return l.key
					}), line, i-lineStart+1)
			}
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].array {
					stack[n-1].index++
				} else {
					expectKey = true
				}
			}
		}
	}
	return nil
}

// pointerOf writes the JSON pointer of a path, eliding the middle of a
// long one.
func pointerOf[T any](path []T, segment func(T) string) string {
	var b strings.Builder
	for i, p := range path {
		if len(path) > 8 && i == 4 {
			fmt.Fprintf(&b, "/…(%d more)…", len(path)-8)
		}
		if len(path) > 8 && i >= 4 && i < len(path)-4 {
			continue
		}
		b.WriteString("/" + escapePtr(segment(p)))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func unquoteKey(q []byte) string {
	if s, err := strconv.Unquote(string(q)); err == nil {
		return s
	}
	return string(q[1 : len(q)-1])
}

// checkSchemaBounds checks a schema document's size and depth.
func checkSchemaBounds(loc string, data []byte) error {
	if len(data) > MaxSchemaSize {
		return fmt.Errorf("schema %s is larger than %d MiB", displayLoc(loc), MaxSchemaSize>>20)
	}
	if err := checkDepth(data); err != nil {
		return fmt.Errorf("schema %s is %w", displayLoc(loc), err)
	}
	return nil
}

// readBounded reads a file of at most max bytes, without reading more
// than that from whatever the path names (a device, a FIFO).
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, max>>20)
	}
	return data, nil
}

// boundedReader fails, rather than truncates, past limit bytes: a
// truncated document would be reported as malformed instead of too large.
type boundedReader struct {
	r           io.Reader
	read, limit int64
	what        string
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if room := b.limit + 1 - b.read; int64(len(p)) > room {
		p = p[:max(room, 0)]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.read > b.limit {
		return n, fmt.Errorf("%s larger than %d MiB", b.what, b.limit>>20)
	}
	return n, err
}
