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
			return nil, withCode(exitPromise, fmt.Errorf("%v (see 'slapnode help %s')", err, fs.Name()))
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
