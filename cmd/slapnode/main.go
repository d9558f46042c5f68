// Command slapnode deploys and runs software on a node the way SlapOS does:
// HCL profiles, recipes and promises compiled to WebAssembly, a built-in
// supervisor, node isolation and a SLAP-compatible master.
//
// This package only parses flags, prints and maps errors to exit codes; the
// work is done by the library packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes, as SlapOS's slapgrid uses them.
const (
	exitOK      = 0
	exitFailure = 1
	exitPromise = 2 // a promise failed; also used for usage errors by flag
	exitOffline = 3 // master unreachable in a one-shot run
)

// command is one subcommand. Each lives in its own file and registers itself
// in init, so that features can be added without touching this file.
type command struct {
	name    string // "apply", or "node run" for a nested command
	summary string
	usage   string // full help text: synopsis, flags and examples
	run     func(env *cliEnv, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// cliEnv carries what a command may touch, so tests can run commands in
// process with captured output.
type cliEnv struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	verbose        bool
}

// exitError lets a command choose its exit code while still printing one
// clear message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that main exits with code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &cliEnv{stdout: stdout, stderr: stderr, stdin: stdin}
	// -v may come before the command.
	for len(args) > 0 && (args[0] == "-v" || args[0] == "--verbose") {
		env.verbose = true
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, _ := lookup(args[1:]); c != nil {
				fmt.Fprint(stdout, c.usage)
				return exitOK
			}
		}
		printUsage(stdout)
		if len(args) == 0 {
			return exitPromise
		}
		return exitOK
	}
	c, rest := lookup(args)
	if c == nil {
		fmt.Fprintf(stderr, "slapnode: unknown command %q; run 'slapnode help' for the list\n", strings.Join(args[:min(2, len(args))], " "))
		return exitPromise
	}
	for _, a := range rest {
		if a == "-v" || a == "--verbose" {
			env.verbose = true
		}
	}
	err := c.run(env, rest)
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, c.usage)
		return exitOK
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "slapnode %s: %s\n", c.name, msg)
	}
	return code
}

// lookup finds the longest registered command name that prefixes args.
func lookup(args []string) (*command, []string) {
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c, args[2:]
		}
	}
	if c, ok := commands[args[0]]; ok {
		return c, args[1:]
	}
	return nil, nil
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "slapnode — SlapOS's node, rebuilt in Go.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: slapnode [-v] COMMAND [ARGS]   (slapnode help COMMAND, or COMMAND --help, for details)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
}
