package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/slapnode/slapnode/hcl/profile"
	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/schema"
)

// jsonFormatVersion is the version of every --json document (docs/json.md):
// the minor number grows when keys are added, the major one when a key
// changes meaning or goes away.
const jsonFormatVersion = "1.0"

// The conventions every --json document follows (docs/json.md), checked by
// TestJSONConventions on every command:
//   - one object, "format_version" first;
//   - snake_case keys (except inside user data: parameters, connection
//     parameters, options);
//   - lists are [] when empty, never null;
//   - no zero times ("0001-01-01T00:00:00Z"): the key is left out;
//   - durations are "duration_ms" numbers, times RFC 3339 strings;
//   - an error is a document with "error" and "diagnostics", on stdout.
//
// Commands build their documents from the types below and from small
// command-specific structs, never by encoding a library type as it is: a
// library's field names are its own business, the CLI's shape is a promise.

// writeJSON prints v, which must encode as a JSON object, as the command's
// JSON document: format_version first, indented, HTML characters as they
// are (connection URLs carry & and <).
func (env *cliEnv) writeJSON(v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	env.jsonDone = true
	_, err = env.stdout.Write(out.Bytes())
	return err
}

// writeJSONLine prints v as one line of a JSON Lines stream (logs --json),
// each line a complete document with its format_version.
func (env *cliEnv) writeJSONLine(v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	env.jsonDone = true
	_, err = env.stdout.Write(append(b, '\n'))
	return err
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := bytes.TrimSpace(buf.Bytes())
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("internal error: a --json document must be an object, not %.20s", b)
	}
	head := `{"format_version":"` + jsonFormatVersion + `"`
	if string(b) == "{}" {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), b[1:]...), nil
}

// jsonDiagnostic is one problem, shaped as Terraform's -json diagnostics.
type jsonDiagnostic struct {
	Severity string     `json:"severity"` // error or warning
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	// Pointer is the JSON pointer of an offending parameter.
	Pointer string `json:"pointer,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

func rangeOf(r *hcl.Range) *jsonRange {
	if r == nil || r.Filename == "" {
		return nil
	}
	return &jsonRange{Filename: r.Filename, Start: jsonPos{r.Start.Line, r.Start.Column}, End: jsonPos{r.End.Line, r.End.Column}}
}

// jsonError is the document printed on stdout when a command run with
// --json fails before printing its own.
type jsonError struct {
	Command     string           `json:"command"`
	ExitCode    int              `json:"exit_code"`
	Error       string           `json:"error"`
	Diagnostics []jsonDiagnostic `json:"diagnostics"`
}

func writeErrorJSON(env *cliEnv, code int, err error) {
	msg := err.Error()
	if msg == "" {
		msg = fmt.Sprintf("exit code %d", code)
	}
	env.writeJSON(jsonError{Command: env.command, ExitCode: code, Error: msg, Diagnostics: diagnosticsOf(err)})
}

// diagnosticsOf splits an error into diagnostics: one per HCL diagnostic,
// parameter violation or joined error, with positions where known.
func diagnosticsOf(err error) []jsonDiagnostic {
	out := []jsonDiagnostic{}
	var perr *profile.Error
	var verr *schema.ValidationError
	var part *partition.PartError
	switch {
	case err == nil:
		return out
	case errors.As(err, &perr):
		for _, d := range perr.Diags {
			sev := "error"
			if d.Severity == hcl.DiagWarning {
				sev = "warning"
			}
			out = append(out, jsonDiagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Range: rangeOf(d.Subject)})
		}
		return out
	case errors.As(err, &verr):
		for _, v := range verr.Violations {
			out = append(out, jsonDiagnostic{Severity: "error", Summary: v.Message, Pointer: pointerOrRoot(v.Pointer)})
		}
		return out
	case errors.As(err, &part):
		return append(out, jsonDiagnostic{Severity: "error", Summary: fmt.Sprintf("part %q (%s) failed", part.Part, part.Recipe),
			Detail: part.Err.Error(), Range: rangeOf(&part.Range)})
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, diagnosticsOf(e)...)
		}
		return out
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err != nil && ee.err != err {
		return diagnosticsOf(ee.err)
	}
	summary, detail, _ := strings.Cut(err.Error(), "\n")
	return append(out, jsonDiagnostic{Severity: "error", Summary: summary, Detail: detail})
}

func pointerOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// nonNil returns an empty list for a nil one: lists are [] in JSON, never
// null.
func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// userData returns an empty object for a nil map (parameters, connection
// parameters): an object in JSON, never null.
func userData(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
