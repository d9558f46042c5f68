// Package promises holds the cookbook's built-in promise checks:
// check_port_listening, check_url_available and check_file_state, and the
// declarations (name and option schema) of the checks the node runs
// natively: check_command, check_service_running, check_free_disk_space.
package promises

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// Register adds the promises of this package to g.
func Register(g *recipe.Registry) {
	g.RegisterPromise("check_port_listening", recipe.Promise{
		Description: "A TCP port accepts connections (slapos.cookbook:check_port_listening).",
		Schema: `{"additionalProperties":false,"type":"object","required":["host","port"],"properties":{
			"host":{"type":"string"},
			"port":{"type":["integer","string"],"minimum":1,"maximum":65535},
			"timeout":{"type":["number","string"],"description":"seconds or a duration (default 2s)"}}}`,
		Check: checkPort,
	})
	g.RegisterPromise("check_url_available", recipe.Promise{
		Description: "A URL answers with the expected HTTP status, optionally with a body containing some text (slapos.cookbook:check_url_available).",
		Schema: `{"additionalProperties":false,"type":"object","required":["url"],"properties":{
			"url":{"type":"string","pattern":"^https?://"},
			"status":{"type":["integer","string"],"description":"expected status (default 200)"},
			"http_code":{"type":["integer","string"],"description":"alias of status (SlapOS)"},
			"content":{"type":"string","description":"text the body must contain"},
			"timeout":{"type":["number","string"],"description":"seconds or a duration (default 10s)"},
			"insecure":{"type":["boolean","string"],"description":"do not verify TLS certificates"},
			"verify":{"type":["boolean","string"],"description":"false = insecure (SlapOS)"}}}`,
		Check: checkURL,
	})
	g.RegisterPromise("check_file_state", recipe.Promise{
		Description: "A file exists, is absent, empty, not empty, or contains (or not) some text.",
		Schema: `{"additionalProperties":false,"type":"object","required":["path"],"properties":{
			"path":{"type":"string"},
			"state":{"enum":["exists","absent","empty","not-empty","contains","not-contains"]},
			"content":{"type":"string"}}}`,
		Check: checkFile,
	})
	registerHostChecks(g)
}

func checkPort(ctx recipe.Context, opts recipe.Options) (bool, string) {
	host, err := opts.String("host")
	if err != nil {
		return false, err.Error()
	}
	port, err := opts.Int("port", 0)
	if err != nil {
		return false, err.Error()
	}
	if port < 1 || port > 65535 {
		return false, fmt.Sprintf("port %d is not between 1 and 65535", port)
	}
	timeout, err := fsx.Duration(opts, "timeout", 2*time.Second)
	if err != nil {
		return false, err.Error()
	}
	addr := fmt.Sprintf("%s:%d", host, port)
	if strings.Contains(host, ":") {
		addr = fmt.Sprintf("[%s]:%d", host, port)
	}
	if err := ctx.TCPProbe(host, int(port), timeout); err != nil {
		return false, fmt.Sprintf("%s does not accept connections: %v", addr, err)
	}
	return true, addr + " accepts connections"
}

func checkURL(ctx recipe.Context, opts recipe.Options) (bool, string) {
	url, err := opts.String("url")
	if err != nil {
		return false, err.Error()
	}
	key := "status"
	if !opts.Has(key) && opts.Has("http_code") {
		key = "http_code"
	}
	want, err := opts.Int(key, 200)
	if err != nil {
		return false, err.Error()
	}
	content, err := opts.StringOr("content", "")
	if err != nil {
		return false, err.Error()
	}
	timeout, err := fsx.Duration(opts, "timeout", 10*time.Second)
	if err != nil {
		return false, err.Error()
	}
	insecure, err := opts.Bool("insecure", false)
	if err != nil {
		return false, err.Error()
	}
	verify, err := opts.Bool("verify", true)
	if err != nil {
		return false, err.Error()
	}
	resp, err := ctx.HTTPGet(url, recipe.HTTPOptions{Timeout: timeout, Insecure: insecure || !verify, MaxBytes: 1 << 20})
	if err != nil {
		return false, err.Error()
	}
	if int64(resp.Status) != want {
		return false, fmt.Sprintf("GET %s answered %d, expected %d", url, resp.Status, want)
	}
	if content != "" && !strings.Contains(resp.Body, content) {
		return false, fmt.Sprintf("GET %s answered %d but the body (first 1 MiB) does not contain %q", url, resp.Status, content)
	}
	return true, fmt.Sprintf("GET %s answered %d", url, resp.Status)
}

func checkFile(ctx recipe.Context, opts recipe.Options) (bool, string) {
	p, err := opts.String("path")
	if err != nil {
		return false, err.Error()
	}
	p = fsx.Resolve(ctx, p)
	state, err := opts.StringOr("state", "exists")
	if err != nil {
		return false, err.Error()
	}
	content, err := opts.StringOr("content", "")
	if err != nil {
		return false, err.Error()
	}
	st, statErr := os.Stat(p)
	exists := statErr == nil
	if statErr != nil && !os.IsNotExist(statErr) {
		return false, fmt.Sprintf("cannot check %s: %v", p, statErr)
	}
	switch state {
	case "absent":
		if exists {
			return false, p + " exists"
		}
		return true, p + " is absent"
	case "exists":
		if !exists {
			return false, p + " does not exist"
		}
		return true, p + " exists"
	}
	if !exists {
		return false, p + " does not exist"
	}
	switch state {
	case "empty":
		if st.Size() != 0 {
			return false, fmt.Sprintf("%s is not empty (%d bytes)", p, st.Size())
		}
		return true, p + " is empty"
	case "not-empty":
		if st.Size() == 0 {
			return false, p + " is empty"
		}
		return true, fmt.Sprintf("%s is not empty (%d bytes)", p, st.Size())
	case "contains", "not-contains":
		if content == "" {
			return false, fmt.Sprintf("state %s needs the content option", state)
		}
		if st.IsDir() {
			return false, p + " is a directory"
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return false, fmt.Sprintf("cannot read %s: %v", p, err)
		}
		has := strings.Contains(string(b), content)
		if has == (state == "contains") {
			return true, fmt.Sprintf("%s %s %q", p, map[bool]string{true: "contains", false: "does not contain"}[has], content)
		}
		return false, fmt.Sprintf("%s %s %q", p, map[bool]string{true: "contains", false: "does not contain"}[has], content)
	}
	return false, fmt.Sprintf("state %q is not exists, absent, empty, not-empty, contains or not-contains", state)
}
