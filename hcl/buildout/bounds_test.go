package buildout

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCfgBounds is issue 18 #6 for .cfg files: a section condition of
// 500,000 parentheses (1 MB) overflowed the stack of the condition parser
// and killed the process; every bound is now refused at file:line:col
// before anything parses the file.
func TestCfgBounds(t *testing.T) {
	cond := func(c string) []byte { return []byte("[buildout]\nparts =\n\n[x:" + c + "]\na = 1\n") }
	for name, tc := range map[string]struct {
		src  []byte
		want string
	}{
		"parentheses": {cond(strings.Repeat("(", 500_000) + "True" + strings.Repeat(")", 500_000)),
			fmt.Sprintf("deep.cfg:4:%d: the section condition is longer than %d characters", 4, MaxConditionLen)},
		"nested within the length": {cond(strings.Repeat("[", 300) + "1" + strings.Repeat("]", 300)),
			fmt.Sprintf("deep.cfg:4:%d: the section condition nests more than %d brackets deep", 4+MaxNesting, MaxNesting)},
		"not chain": {cond(strings.Repeat("not ", 100_000) + "True"),
			"deep.cfg:4:4: the section condition is longer than"},
		"size": {append([]byte("[buildout]\nparts =\n[x]\na =\n"), []byte(strings.Repeat("  0123456789\n", MaxFileSize/13+1))...),
			fmt.Sprintf("deep.cfg:%d:", 4+(MaxFileSize-len("[buildout]\nparts =\n[x]\na =\n"))/13+1)},
		"size, one line": {[]byte("[buildout]\nparts = " + strings.Repeat("x", MaxFileSize)),
			fmt.Sprintf("deep.cfg:2:%d: the file is larger than 1 MiB", MaxFileSize-len("[buildout]\n")+1)},
		"CRLF lines": {[]byte("[buildout]\r\nparts =\r\n\r\n[x:" + strings.Repeat("(", 300) + "]\r\n"),
			"deep.cfg:4:260: the section condition nests"},
	} {
		_, err := Parse("deep.cfg", tc.src)
		var list ErrorList
		if !errors.As(err, &list) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %.200v, want %q", name, err, tc.want)
		}
	}
	// Within the bounds, conditions parse and evaluate as before.
	src := cond(strings.Repeat("(", MaxNesting) + "True" + strings.Repeat(")", MaxNesting) + " and " + strings.Repeat("not ", 501) + "False")
	f, err := Parse("ok.cfg", src)
	if err != nil {
		t.Fatal(err)
	}
	secs, _, err := f.Sections(DefaultCondEnv())
	if err != nil || secs["x"] == nil {
		t.Fatalf("the condition within the bounds: %v %v", secs, err)
	}
}
