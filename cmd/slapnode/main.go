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

// Exit codes. Each means one thing whatever the command, so that scripts
// can tell a broken promise from a typo (README, "Exit codes"). SlapOS's
// slapgrid exits 2 when a promise fails; slapnode keeps 2 for "a plan has
// changes", as Terraform's -detailed-exitcode does.
const (
	exitOK            = 0
	exitFailure       = 1  // the command failed (the message says why)
	exitChanges       = 2  // plan -detailed-exitcode: there are changes
	exitOffline       = 3  // the master is unreachable
	exitPromiseFailed = 4  // applied, but a promise failed
	exitUsage         = 64 // bad command line (sysexits' EX_USAGE)
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
	quiet          bool // -q: no progress, no notes; results and errors only
	// json: the command line asks for JSON (--json), so that an error is
	// printed as a JSON document on stdout too.
	json bool
	// jsonDone: the command printed its JSON document (an error after it,
	// such as a failed promise, does not print a second one).
	jsonDone bool
	command  string
	prog     *progress
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

// exitCode is the code err asks for (exitFailure by default).
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &cliEnv{stdout: stdout, stderr: stderr, stdin: stdin}
	// Global flags come before the command.
global:
	for len(args) > 0 {
		switch args[0] {
		case "-v", "--verbose":
			env.verbose = true
		case "-q", "--quiet":
			env.quiet = true
		case "--version", "-version":
			args = []string{"version"}
			continue
		default:
			break global
		}
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, rest := lookup(args[1:]); c != nil && len(rest) == 0 {
				fmt.Fprint(stdout, c.usage)
				return exitOK
			}
			if sub := subcommands(args[1]); len(sub) > 0 && len(args) == 2 {
				printGroup(stdout, args[1], sub)
				return exitOK
			}
			fmt.Fprintf(stderr, "slapnode help: no command %q%s (run 'slapnode help' for the list)\n", strings.Join(args[1:], " "), suggestCommand(args[1:]))
			return exitUsage
		}
		printUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, rest := lookup(args)
	if c == nil {
		code := unknownCommand(env, args)
		if code != exitOK && wantsJSON(args) {
			err := fmt.Errorf("unknown command %q%s", args[0], suggestCommand(args[:1]))
			if sub := subcommands(args[0]); len(sub) > 0 {
				err = fmt.Errorf("%q needs a command: %s", args[0], strings.Join(sub, ", "))
			}
			writeErrorJSON(env, code, err)
		}
		return code
	}
	env.command = c.name
	for _, a := range rest {
		if a == "--" {
			break
		}
		switch a {
		case "-v", "--verbose":
			env.verbose = true
		case "-q", "--quiet":
			env.quiet = true
		}
	}
	env.json = wantsJSON(rest)
	env.prog = newProgress(stderr, env.quiet)
	err := c.run(env, rest)
	env.prog.stop()
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, c.usage)
		return exitOK
	}
	code := exitCode(err)
	if env.json && !env.jsonDone {
		writeErrorJSON(env, code, err)
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "slapnode %s: %s\n", c.name, msg)
	}
	return code
}

// wantsJSON reports whether a command line asks for JSON output, so that
// even an error found before its flags are parsed is a JSON document.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
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

// unknownCommand explains a command line that names no command: the
// subcommands of a group ("slapnode node"), or the closest command.
func unknownCommand(env *cliEnv, args []string) int {
	if sub := subcommands(args[0]); len(sub) > 0 {
		if len(args) == 1 || strings.HasPrefix(args[1], "-") {
			if args[len(args)-1] == "-h" || args[len(args)-1] == "--help" {
				printGroup(env.stdout, args[0], sub)
				return exitOK
			}
			// An incomplete command: the list is the answer, but scripts
			// must not take it for success (and stdout is for JSON then).
			w := env.stdout
			if wantsJSON(args) {
				w = env.stderr
			}
			printGroup(w, args[0], sub)
			return exitUsage
		}
		fmt.Fprintf(env.stderr, "slapnode: unknown command %q%s\n", args[0]+" "+args[1], suggestCommand(args[:2]))
		printGroup(env.stderr, args[0], sub)
		return exitUsage
	}
	fmt.Fprintf(env.stderr, "slapnode: unknown command %q%s (run 'slapnode help' for the list)\n", args[0], suggestCommand(args[:1]))
	return exitUsage
}

// subcommands lists the commands of group ("node" → node run, node stop…).
func subcommands(group string) []string {
	var out []string
	for n := range commands {
		if rest, ok := strings.CutPrefix(n, group+" "); ok && rest != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func printGroup(w io.Writer, group string, names []string) {
	fmt.Fprintf(w, "Usage: slapnode %s COMMAND [ARGS]   (slapnode help %s COMMAND for details)\n\n", group, group)
	if c := commands[group]; c != nil {
		fmt.Fprintf(w, "  %-18s %s\n", group, c.summary)
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, commands[n].summary)
	}
}

// suggestCommand returns "; did you mean X?" for the registered command
// closest to what was typed, or "".
func suggestCommand(words []string) string {
	typed := strings.Join(words, " ")
	var names []string
	seen := map[string]bool{}
	for n := range commands {
		// One word typed: compare with single words (commands and
		// groups); two: with two-word commands.
		cand := n
		if len(words) == 1 {
			cand, _, _ = strings.Cut(n, " ")
		} else if !strings.Contains(n, " ") {
			continue
		}
		if !seen[cand] {
			seen[cand] = true
			names = append(names, cand)
		}
	}
	if s := closest(typed, names); len(s) > 0 {
		return ": did you mean " + orList(s) + "?"
	}
	return ""
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "slapnode — SlapOS's node, rebuilt in Go.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: slapnode [-v] [-q] COMMAND [ARGS]   (slapnode help COMMAND, or COMMAND --help, for details)")
	fmt.Fprintln(w, "       slapnode --version")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Global flags: -v (details), -q (no progress or notes), --json on every command that prints.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 failure, 2 plan has changes (plan -detailed-exitcode), 3 master unreachable,")
	fmt.Fprintln(w, "            4 a promise failed, 64 usage error.")
}
