package values

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/randx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

func registerMore(g *recipe.Registry) {
	g.Register("random-integer", recipe.Recipe{
		Description: "A random integer between minimum and maximum, kept across applies (slapos.cookbook:random.integer).",
		Schema: `{"additionalProperties":false,"type":"object","required":["minimum","maximum"],"properties":{
			"minimum":{"type":["integer","string"]},"maximum":{"type":["integer","string"]},
			"value":{"type":["integer","string"],"description":"a fixed value instead"}
		}}`,
		Outputs: []string{"value"},
		Install: randomInteger,
	})
	g.Register("random-time", recipe.Recipe{
		Description: "A random time of day, H:MM, kept across applies (slapos.cookbook:random.time).",
		Schema:      `{"additionalProperties":false,"type":"object","properties":{"time":{"type":"string","description":"a fixed time instead"}}}`,
		Outputs:     []string{"time"},
		Install:     randomTime,
	})
	g.Register("mac-address", recipe.Recipe{
		Description: "A random locally administered MAC address, kept in a file (slapos.cookbook:generate.mac).",
		Schema: `{"additionalProperties":false,"type":"object","required":["storage-path"],"properties":{
			"storage-path":{"type":"string"},
			"mac-address":{"type":"string","description":"a fixed address instead"}
		}}`,
		Outputs: []string{"mac-address"},
		Install: macAddress,
	})
	g.Register("urlparse", recipe.Recipe{
		Description: "Split a URL into scheme, username, password, host, port, path, params, query and fragment (slapos.cookbook:urlparse).",
		Schema:      `{"additionalProperties":false,"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}`,
		Outputs:     []string{"scheme", "username", "password", "host", "port", "path", "params", "query", "fragment"},
		Install:     urlparse,
	})
}

func randInt(min, max int64) (int64, error) {
	if max < min {
		return 0, fmt.Errorf("maximum %d is below minimum %d", max, min)
	}
	n, err := randx.IntN(max - min + 1)
	if err != nil {
		return 0, err
	}
	return min + n, nil
}

// randomInteger keeps the previous install's value while it is in range
// (SlapOS draws a new one each run, which reinstalls what uses it).
func randomInteger(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	if opts.Has("value") {
		v, err := opts.String("value")
		return recipe.Result{Outputs: map[string]any{"value": v}}, err
	}
	min, err := opts.Int("minimum", 0)
	if err != nil {
		return recipe.Result{}, err
	}
	max, err := opts.Int("maximum", 0)
	if err != nil {
		return recipe.Result{}, err
	}
	if prev, ok := ctx.PreviousOutput("value"); ok {
		if n, err := strconv.ParseInt(fmt.Sprint(prev), 10, 64); err == nil && n >= min && n <= max {
			return recipe.Result{Outputs: map[string]any{"value": fmt.Sprint(n)}}, nil
		}
	}
	n, err := randInt(min, max)
	if err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"value": fmt.Sprint(n)}}, nil
}

func randomTime(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	if opts.Has("time") {
		v, err := opts.String("time")
		return recipe.Result{Outputs: map[string]any{"time": v}}, err
	}
	if prev, ok := ctx.PreviousOutput("time"); ok {
		if s, ok := prev.(string); ok && s != "" {
			return recipe.Result{Outputs: map[string]any{"time": s}}, nil
		}
	}
	h, err := randInt(0, 23)
	if err != nil {
		return recipe.Result{}, err
	}
	m, err := randInt(0, 59)
	if err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"time": fmt.Sprintf("%d:%02d", h, m)}}, nil
}

// macAddress is slapos.cookbook:generate.mac: the address comes from the
// option, else from storage-path, else it is drawn (first octet fe: a
// locally administered address) and stored there.
func macAddress(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	path, err := opts.String("storage-path")
	if err != nil {
		return recipe.Result{}, err
	}
	path = fsx.Resolve(ctx, path)
	mac, _ := opts.StringOr("mac-address", "")
	if mac == "" {
		if b, err := os.ReadFile(path); err == nil {
			mac = strings.TrimSpace(string(b))
		} else if !errors.Is(err, os.ErrNotExist) {
			return recipe.Result{}, err
		}
	}
	if mac == "" {
		octets := []string{"fe"}
		for range 5 {
			n, err := randInt(0, 255)
			if err != nil {
				return recipe.Result{}, err
			}
			octets = append(octets, fmt.Sprintf("%02x", n))
		}
		mac = strings.Join(octets, ":")
	}
	if err := fsx.WriteFile(ctx, path, []byte(mac), 0o600); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"mac-address": mac}, Installed: []string{path}}, nil
}

// urlparse splits url as Python's urllib.parse.urlparse does (the path
// without its surrounding slashes, as slapos.cookbook:urlparse gives it).
func urlparse(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	raw, err := opts.String("url")
	if err != nil {
		return recipe.Result{}, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return recipe.Result{}, fmt.Errorf("option \"url\": %w", err)
	}
	path, params := u.EscapedPath(), ""
	if u.Opaque != "" {
		path = u.Opaque
	}
	if i := strings.LastIndex(path, "/"); strings.Contains(path[max(i, 0):], ";") {
		j := strings.Index(path[max(i, 0):], ";") + max(i, 0)
		path, params = path[:j], path[j+1:]
	}
	password, _ := u.User.Password()
	out := map[string]any{
		"scheme":   strings.ToLower(u.Scheme),
		"username": u.User.Username(),
		"password": password,
		"host":     strings.ToLower(u.Hostname()),
		"port":     u.Port(),
		"path":     strings.Trim(path, "/"),
		"params":   params,
		"query":    u.RawQuery,
		"fragment": u.EscapedFragment(),
	}
	return recipe.Result{Outputs: out}, nil
}
