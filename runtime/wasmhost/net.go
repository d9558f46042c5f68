package wasmhost

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// netPattern is one allow_net grant: scheme://host:port where scheme may be
// "*", host "*" or "*.suffix", and port "*".
type netPattern struct {
	raw    string
	scheme string
	host   string // normalised: lower case, no brackets, canonical IP
	port   string
}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

func parseNetPattern(s string) (netPattern, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" {
		return netPattern{}, fmt.Errorf("%q: want scheme://host:port (e.g. tcp://127.0.0.1:8080, https://*.example.org)", s)
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "tcp", "http", "https", "*":
	default:
		return netPattern{}, fmt.Errorf("%q: scheme %q is not one of tcp, http, https, *", s, scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.Contains(rest, "/") {
		return netPattern{}, fmt.Errorf("%q: a network grant names a host and port, not a path", s)
	}
	var host, port string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return netPattern{}, fmt.Errorf("%q: unclosed [ in IPv6 address", s)
		}
		host, port = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		if rest[end+1:] != "" && !strings.HasPrefix(rest[end+1:], ":") {
			return netPattern{}, fmt.Errorf("%q: junk after IPv6 address", s)
		}
	} else if strings.Count(rest, ":") > 1 {
		return netPattern{}, fmt.Errorf("%q: write IPv6 addresses in brackets: [::1]:8080", s)
	} else {
		host, port, _ = strings.Cut(rest, ":")
	}
	if host == "" {
		return netPattern{}, fmt.Errorf("%q: empty host", s)
	}
	if strings.Contains(host, "*") && host != "*" && !(strings.HasPrefix(host, "*.") && !strings.Contains(host[2:], "*")) {
		return netPattern{}, fmt.Errorf("%q: a host wildcard is * or a *.suffix prefix", s)
	}
	if port == "" {
		port = defaultPorts[scheme]
		if port == "" {
			return netPattern{}, fmt.Errorf("%q: give a port (or :*)", s)
		}
	}
	if port != "*" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return netPattern{}, fmt.Errorf("%q: port %q is not 1-65535 or *", s, port)
		}
	}
	return netPattern{raw: s, scheme: scheme, host: normHost(host), port: port}, nil
}

// normHost makes equal addresses compare equal (::1 and 0::1, case).
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

func (p netPattern) match(scheme, host, port string) bool {
	if p.scheme != "*" && p.scheme != scheme {
		return false
	}
	if p.port != "*" && p.port != port {
		return false
	}
	host = normHost(host)
	switch {
	case p.host == "*":
		return true
	case strings.HasPrefix(p.host, "*."):
		return strings.HasSuffix(host, p.host[1:])
	default:
		return p.host == host
	}
}

// allowed checks a destination against the call's grants.
func (st *callState) allowed(scheme, host, port string) error {
	for _, p := range st.net {
		if p.match(scheme, host, port) {
			return nil
		}
	}
	return fmt.Errorf("%s://%s is not granted to module %q: add it to allow_net",
		scheme, net.JoinHostPort(host, port), st.m.Name)
}

func urlPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return defaultPorts[u.Scheme]
}

func (st *callState) allowedURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %s: only http and https are supported", u.Redacted())
	}
	if u.Hostname() == "" {
		return fmt.Errorf("URL %s has no host", u.Redacted())
	}
	return st.allowed(u.Scheme, u.Hostname(), urlPort(u))
}

// httpClient makes a client that checks every redirect against the grants
// and never uses a proxy from the environment (the grant is the destination).
func (st *callState) httpClient(insecure bool) *http.Client {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return st.s.dial(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: insecure},
		DisableKeepAlives: true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if err := st.allowedURL(req.URL); err != nil {
				return fmt.Errorf("redirect: %w", err)
			}
			return nil
		},
	}
}

func msTimeout(ms int64, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

type tcpProbeRequest struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	TimeoutMs int64  `json:"timeout_ms"`
}

type okResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (h *Host) tcpProbe(ctx context.Context, st *callState, req []byte) any {
	var r tcpProbeRequest
	if err := decode(req, &r); err != nil {
		return okResponse{Error: fmt.Sprintf("tcp_probe: bad request: %v", err)}
	}
	if r.Host == "" || r.Port <= 0 || r.Port > 65535 {
		return okResponse{Error: "tcp_probe: give host and a port in 1-65535"}
	}
	port := strconv.Itoa(r.Port)
	if err := st.allowed("tcp", r.Host, port); err != nil {
		return okResponse{Error: err.Error()}
	}
	dctx, cancel := context.WithTimeout(ctx, msTimeout(r.TimeoutMs, 2*time.Second))
	defer cancel()
	c, err := st.s.dial(dctx, "tcp", net.JoinHostPort(strings.Trim(r.Host, "[]"), port))
	if err != nil {
		return okResponse{Error: netError(err)}
	}
	c.Close()
	return okResponse{OK: true}
}

// netError keeps the cause of a dial error ("connection refused") without
// the address noise the guest already knows.
func netError(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		msg := oe.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return msg
	}
	return err.Error()
}

type httpGetRequest struct {
	URL       string `json:"url"`
	TimeoutMs int64  `json:"timeout_ms"`
	Insecure  bool   `json:"insecure"`
	MaxBytes  int64  `json:"max_bytes"`
}

type httpGetResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

const maxHTTPBody = 1 << 20

func (h *Host) httpGet(ctx context.Context, st *callState, req []byte) any {
	var r httpGetRequest
	if err := decode(req, &r); err != nil {
		return httpGetResponse{Error: fmt.Sprintf("http_get: bad request: %v", err)}
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return httpGetResponse{Error: fmt.Sprintf("http_get: %v", err)}
	}
	if err := st.allowedURL(u); err != nil {
		return httpGetResponse{Error: err.Error()}
	}
	max := r.MaxBytes
	if max <= 0 {
		max = 64 << 10
	}
	if max > maxHTTPBody {
		max = maxHTTPBody
	}
	hctx, cancel := context.WithTimeout(ctx, msTimeout(r.TimeoutMs, 5*time.Second))
	defer cancel()
	hreq, err := http.NewRequestWithContext(hctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return httpGetResponse{Error: fmt.Sprintf("http_get: %v", err)}
	}
	resp, err := st.httpClient(r.Insecure).Do(hreq)
	if err != nil {
		return httpGetResponse{Error: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max))
	out := httpGetResponse{Status: resp.StatusCode, Body: string(body)}
	if err != nil {
		out.Error = fmt.Sprintf("reading body: %v", err)
	}
	return out
}
