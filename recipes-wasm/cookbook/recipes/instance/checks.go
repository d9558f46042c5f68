package instance

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

func registerChecks(g *recipe.Registry) {
	g.Register("url-check", recipe.Recipe{
		Description: "Write an executable promise that fails when a URL does not answer the expected HTTP status, with curl (slapos.cookbook:check_url_available).",
		Schema: `{"additionalProperties":false,"type":"object","required":["path","url"],"properties":{
			"path":{"type":"string","description":"the promise executable (etc/promise/NAME)"},
			"url":{"type":"string"},
			"http_code":{"type":["integer","string"],"description":"expected status (default 200)"},
			"check-secure":{"type":["integer","string"],"description":"1: a 401 answer is a success (the URL is protected)"},
			"dash_path":{"type":"string","description":"the shell (default /bin/sh)"},
			"curl_path":{"type":"string","description":"curl (default curl)"},
			"timeout-file-path":{"type":"string","description":"a file holding the timeout in seconds (default etc/promise_timeout; 20 without it)"},
			"ca-cert-file":{"type":"string"},"cert-file":{"type":"string"},"key-file":{"type":"string"}
		}}`,
		Outputs: []string{"location"},
		Install: urlCheck,
	})
	g.Register("param-check", recipe.Recipe{
		Description: "Write an executable promise that fails when a value is not what is expected (slapos.cookbook:check_parameter).",
		Schema: `{"additionalProperties":false,"type":"object","required":["path","value"],"properties":{
			"path":{"type":"string","description":"the promise executable (etc/promise/NAME)"},
			"value":{"type":"string"},
			"expected-type":{"type":"string","description":"ipv4 or ipv6: the value must be such an address"},
			"expected-value":{"type":"string"},
			"expected-not-value":{"type":"string"}
		}}`,
		Outputs: []string{"location"},
		Install: paramCheck,
	})
}

// urlCheck writes the promise of slapos.cookbook:check_url_available: a
// shell script asking curl for the URL's status (exit 0: expected status;
// 1: malformed or unreachable; 2: another status).
func urlCheck(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	get := func(k, def string) string {
		v, err := opts.StringOr(k, def)
		if err != nil {
			return def
		}
		return v
	}
	path, err := opts.String("path")
	if err != nil {
		return recipe.Result{}, err
	}
	code := strings.TrimSpace(get("http_code", "200"))
	secure := strings.TrimSpace(get("check-secure", "0"))
	for name, v := range map[string]string{"http_code": code, "check-secure": secure} {
		if v == "" || strings.Trim(v, "0123456789") != "" {
			return recipe.Result{}, fmt.Errorf("option %q must be a number, not %q", name, v)
		}
	}
	q := fsx.ShellQuote
	script := fmt.Sprintf(`#!%s
# Written by slapnode's cookbook (url-check, part %s): do not edit.
URL=%s
F_TIMEOUT=%s
CA_CERT=%s
CERT=%s
KEY=%s
TIMEOUT=20
if [ -z "$URL" ]; then
  echo "No URL specified." >&2
  exit 3
fi
if [ -s "$F_TIMEOUT" ]; then
  t=$(cat "$F_TIMEOUT")
  case "$t" in ''|*[!0-9]*) ;; *) TIMEOUT=$t ;; esac
fi
if [ -n "$CA_CERT" ] && [ -n "$CERT" ] && [ -n "$KEY" ]; then
  CODE=$(%s -g -k -sL "$URL" -w '%%{http_code}' --max-time "$TIMEOUT" -o /dev/null --cacert "$CA_CERT" --cert "$CERT" --key "$KEY")
else
  CODE=$(%s -g -k -sL "$URL" -w '%%{http_code}' --max-time "$TIMEOUT" -o /dev/null)
fi
status=$?
if [ $status -eq 3 ]; then
  echo "URL malformed: $URL." >&2
  exit 1
fi
if [ -z "$CODE" ] || [ "$CODE" = 000 ]; then
  echo "$URL is not available (server not reachable)." >&2
  exit 1
fi
if [ %s -eq 1 ] && [ "$CODE" -eq 401 ]; then
  echo "$URL is protected (returned $CODE)." >&2
  exit 0
fi
if [ "$CODE" -ne %s ]; then
  echo "$URL is not available (returned $CODE, expected %s)." >&2
  exit 2
fi
`, get("dash_path", "/bin/sh"), ctx.Part, q(get("url", "")), q(fsx.Resolve(ctx, get("timeout-file-path", "etc/promise_timeout"))),
		q(get("ca-cert-file", "")), q(get("cert-file", "")), q(get("key-file", "")),
		get("curl_path", "curl"), get("curl_path", "curl"), secure, code, code)
	path = fsx.Resolve(ctx, path)
	if err := fsx.WriteFile(ctx, path, []byte(script), 0o755); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": path}, Installed: []string{path}}, nil
}

// paramCheck writes the promise of slapos.cookbook:check_parameter. The
// value is known when the promise is written, so the check is decided
// then: the script only reports it.
func paramCheck(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	path, err := opts.String("path")
	if err != nil {
		return recipe.Result{}, err
	}
	value, err := opts.String("value")
	if err != nil {
		return recipe.Result{}, err
	}
	typ, _ := opts.StringOr("expected-type", "")
	expected, _ := opts.StringOr("expected-value", "")
	notExpected, _ := opts.StringOr("expected-not-value", "")
	fail := ""
	switch typ {
	case "ipv4", "ipv6":
		a, err := netip.ParseAddr(value)
		if err != nil || a.Zone() != "" || typ == "ipv4" && !a.Is4() || typ == "ipv6" && !a.Is6() {
			fail = fmt.Sprintf("%s is not an %s address", value, typ)
		}
	default:
		if expected != "" && value != expected {
			fail = fmt.Sprintf("FAIL: %s != %s", value, expected)
		} else if notExpected != "" && value == notExpected {
			fail = fmt.Sprintf("FAIL: %s == %s", value, notExpected)
		}
	}
	body := "exit 0\n"
	if fail != "" {
		body = "echo " + fsx.ShellQuote(fail) + "\nexit 127\n"
	}
	script := fmt.Sprintf("#!/bin/sh\n# Written by slapnode's cookbook (param-check, part %s): do not edit.\n%s", ctx.Part, body)
	path = fsx.Resolve(ctx, path)
	if err := fsx.WriteFile(ctx, path, []byte(script), 0o755); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": path}, Installed: []string{path}}, nil
}
