package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

var errHelp = errors.New("help requested")

// newFlags returns a FlagSet that reports errors instead of exiting and
// understands -h/--help.
func newFlags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet(c, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("v", false, "verbose: print details of errors")
	fs.Bool("verbose", false, "verbose: print details of errors")
	fs.Bool("q", false, "quiet: no progress, no notes")
	fs.Bool("quiet", false, "quiet: no progress, no notes")
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (slapnode apply profile.hcl --root x), as users of Terraform expect.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, withCode(exitUsage, fmt.Errorf("%v%s (see 'slapnode help %s')", err, suggestFlag(fs, err), fs.Name()))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// suggestFlag returns "; did you mean --json?" for an unknown flag close to
// a defined one.
func suggestFlag(fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return ""
	}
	name = strings.TrimLeft(name, "-")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	s := closest(name, names)
	for i, n := range s {
		if len(n) > 1 {
			s[i] = "--" + n
		} else {
			s[i] = "-" + n
		}
	}
	if len(s) == 0 {
		return ""
	}
	return "; did you mean " + orList(s) + "?"
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// defaultRoot is the embedded default node's state directory:
// $SLAPNODE_ROOT, else $XDG_STATE_HOME/slapnode, else ~/.local/state/slapnode.
func defaultRoot() string {
	if r := os.Getenv("SLAPNODE_ROOT"); r != "" {
		return r
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "slapnode")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "slapnode")
	}
	return ".slapnode"
}

// rootFlag adds the common --root flag.
func rootFlag(fs *flag.FlagSet) *string {
	return fs.String("root", defaultRoot(), "node root: state directory of the node (env SLAPNODE_ROOT)")
}
