package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/partition/release"
	"github.com/slapnode/slapnode/runtime/wasmhost"
)

func init() {
	register(&command{
		name:    "release check",
		summary: "refuse a software profile that can change under a user's feet (not a frozen release)",
		usage: `Usage: slapnode release check PROFILE [flags]

Checks that the software profile PROFILE, the files it extends and the
instance profiles of its software types form a frozen release: the same bits
today and in a year, on any node. Refused, each with file:line:col and the fix:

  checksum  a download (cookbook:download, download-unpacked, cmmi, patches, a
            custom recipe's url) or a module without a checksum
  extends   an extends URL without #sha256=HEX
  floating  a floating version ("latest", ">=2", "1.x") or a branch reference
            (git refs must be commit ids or tags; branch archive URLs)
  exec      a command a module may run (allow_exec) that the profile does not
            pin: commands the release builds (${software.path}/…, part outputs)
            are pinned; host commands are pinned by content in
                part "release-pins" { commands = { cc = "sha256:HEX" } }
            and this node's program must match the pin

'slapnode apply --release' enforces the same rules before installing.

Flags:
  --root DIR            node root whose download cache fetches extends URLs
  --no-host-digests     only check that host commands are pinned, not that this
                        node's programs match the pins (checking on a build machine)
  --json                print the problems as JSON

Exit codes: 0 a frozen release, 1 problems found (or the profile does not load).

Examples:
  slapnode release check examples/helloweb/software.hcl
  slapnode release check software.hcl --json | jq '.problems[].fix'
`,
		run: runReleaseCheck,
	})
}

func runReleaseCheck(env *cliEnv, args []string) error {
	fs := newFlags("release check")
	root := rootFlag(fs)
	noDigests := fs.Bool("no-host-digests", false, "do not hash host commands")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, fmt.Errorf("give one software profile, e.g. slapnode release check examples/helloweb/software.hcl"))
	}
	ctx, cancel := signalContext()
	defer cancel()
	// Pinned extends URLs are fetched (and verified) through the node's
	// download cache; unpinned ones are refused by DownloadPinned and
	// reported by the check with their position.
	host, err := wasmhost.New(ctx, wasmhost.Config{DownloadDir: filepath.Join(*root, "cache", "download")})
	if err != nil {
		return err
	}
	defer host.Close(context.Background())
	saved := profile.FetchURL
	profile.FetchURL = func(u string) (string, error) { return host.DownloadPinned(ctx, u) }
	defer func() { profile.FetchURL = saved }()

	p, diags := profile.Load(pos[0], profile.Software)
	var problems []release.Problem
	if p != nil {
		problems = release.Check(p, release.Options{NoHostDigests: *noDigests})
	}
	// A load error the check explains better (an unpinned extends URL) is
	// not repeated; others are reported first, as problems.
	var loadErrs []release.Problem
	for _, d := range diags {
		if d.Summary == "Cannot extend URL" && releaseHasRule(problems, release.RuleExtends) {
			continue
		}
		if d.Severity == hcl.DiagError {
			pr := release.Problem{Rule: release.RuleLoad, Message: d.Summary + ": " + d.Detail, Fix: "fix the profile so that it loads"}
			if d.Subject != nil {
				pr.Range = *d.Subject
			}
			loadErrs = append(loadErrs, pr)
		}
	}
	problems = append(loadErrs, problems...)
	if *asJSON {
		doc := jsonReleaseCheck{Profile: pos[0], Frozen: len(problems) == 0, Problems: []jsonReleaseProblem{}}
		if p != nil {
			doc.FilesChecked = len(p.Files)
		}
		for _, pr := range problems {
			doc.Problems = append(doc.Problems, jsonReleaseProblem{pr.Rule, pr.Range.Filename, pr.Range.Start.Line, pr.Range.Start.Column, pr.Message, pr.Fix})
		}
		if err := env.writeJSON(doc); err != nil {
			return err
		}
	} else if len(problems) > 0 {
		release.Write(env.stdout, problems)
	}
	if len(problems) > 0 {
		return withCode(exitFailure, fmt.Errorf("%s is not a frozen release: %d problem(s)", pos[0], len(problems)))
	}
	if !*asJSON {
		fmt.Fprintf(env.stdout, "%s is a frozen release (%d file(s) checked, instance profiles included)\n", pos[0], len(p.Files))
	}
	return nil
}

// jsonReleaseCheck is release check --json.
type jsonReleaseCheck struct {
	Profile      string               `json:"profile"`
	Frozen       bool                 `json:"frozen"`
	FilesChecked int                  `json:"files_checked"`
	Problems     []jsonReleaseProblem `json:"problems"`
}

type jsonReleaseProblem struct {
	Rule    string `json:"rule"` // checksum, extends, floating, exec, load
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

func releaseHasRule(problems []release.Problem, rule string) bool {
	for _, p := range problems {
		if p.Rule == rule {
			return true
		}
	}
	return false
}
