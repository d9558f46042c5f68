package slap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// UserAgent is what the client sends, as slapos.core's library does; the
// version is the protocol level it speaks.
const UserAgent = "slapos.core/1.24.0"

// Errors a master's answer maps to, as slapos.slap's connection class maps
// them: test with errors.Is.
var (
	ErrNotFound = errors.New("not found")          // HTTP 404: no free partition, unknown instance…
	ErrNotReady = errors.New("resource not ready") // HTTP 408: the instance is not allocated yet
	ErrAuth     = errors.New("not authorised")     // HTTP 401/403 (slapnode's authenticated master)
)

// HTTPError is an answer with a status of 400 or more.
type HTTPError struct {
	Endpoint string
	Status   int
	Message  string // the text of the error page's <p>, or the body
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("master answered %d to %s: %s", e.Status, e.Endpoint, e.Message)
}

// Is maps statuses to ErrNotFound, ErrNotReady and ErrAuth.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrNotReady:
		return e.Status == http.StatusRequestTimeout
	case ErrAuth:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// Client talks to a SLAP master (slapnode's, slapproxy, or a SlapOS Master
// through its legacy endpoints). It is safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	token   string
	hasCert bool  // a client certificate is configured (WithTLS)
	optErr  error // an option that could not be applied

	// The last computer document read, as sent and as decoded: a node
	// polls the same one every pass, byte for byte identical while nothing
	// changes, and decoding it is most of what an unchanged pass costs.
	lastMu       sync.Mutex
	lastComputer string
	lastBody     []byte
	lastTree     any // never handed out: callers get copies
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (TLS configuration, client
// certificates, timeouts).
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// WithToken authenticates every call with a bearer token, as slapnode's
// master requires on non-loopback listeners.
func WithToken(token string) ClientOption { return func(c *Client) { c.token = token } }

// NewClient returns a client of the master at masterURL
// (http://127.0.0.1:PORT, https://master.example/…).
func NewClient(masterURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(masterURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("master URL %q: want http://HOST:PORT or https://HOST[:PORT][/PATH]", masterURL)
	}
	c := &Client{base: strings.TrimRight(masterURL, "/") + "/", http: &http.Client{Timeout: 60 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	if c.optErr != nil {
		return nil, c.optErr
	}
	return c, nil
}

// URL is the master's URL, with a trailing slash.
func (c *Client) URL() string { return c.base }

// field is one form field; order is kept, as slapos.slap sends them.
type field struct{ k, v string }

func encodeForm(fields []field) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(f.k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(f.v))
	}
	return b.String()
}

func (c *Client) get(ctx context.Context, path string, fields ...field) ([]byte, error) {
	u := c.base + path
	if len(fields) > 0 {
		u += "?" + encodeForm(fields)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, path)
}

func (c *Client) post(ctx context.Context, path string, fields ...field) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(encodeForm(fields)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req, path)
}

// maxAnswer bounds what the client reads from a master.
const maxAnswer = 64 << 20

var errorParagraph = regexp.MustCompile(`(?s)<p>(.*?)</p>`)

func (c *Client) do(req *http.Request, path string) ([]byte, error) {
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "*/*")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if cerr := c.certificateError(req.Context(), err); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("master %s unreachable (%s): %w", c.base, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading the master's answer to %s: %w", path, err)
	}
	if resp.StatusCode >= 400 {
		msg := strings.TrimSpace(string(body))
		if m := errorParagraph.FindSubmatch(body); m != nil {
			msg = html.UnescapeString(string(m[1]))
		}
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return nil, &HTTPError{Endpoint: path, Status: resp.StatusCode, Message: msg}
	}
	return body, nil
}

func (c *Client) unmarshal(path string, body []byte) (any, error) {
	v, err := Unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("the master's answer to %s: %w", path, err)
	}
	return v, nil
}

func dumps(v any) (string, error) {
	b, err := Marshal(v)
	return string(b), err
}

// FullComputerInformation is what the node works from: the software
// releases to install or remove and every partition with its requested
// state, software, type, parameters, shared instances and timestamp.
func (c *Client) FullComputerInformation(ctx context.Context, computerID string) (*Computer, error) {
	body, err := c.get(ctx, "getFullComputerInformation", field{"computer_id", computerID})
	if err != nil {
		return nil, err
	}
	c.lastMu.Lock()
	defer c.lastMu.Unlock()
	if c.lastComputer != computerID || !bytes.Equal(c.lastBody, body) {
		v, err := c.unmarshal("getFullComputerInformation", body)
		if err != nil {
			return nil, err
		}
		c.lastComputer, c.lastBody, c.lastTree = computerID, body, v
	}
	// A copy, so that what the caller does with its Computer never
	// reaches the next one.
	return ParseComputer(deepCopy(c.lastTree))
}

// deepCopy copies a value Unmarshal produced.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	case Tuple:
		return Tuple(deepCopy([]any(x)).([]any))
	case Set:
		return Set(deepCopy([]any(x)).([]any))
	case *Object:
		return &Object{Class: x.Class, Args: deepCopy(x.Args).(Tuple), Dict: deepCopy(x.Dict).(map[string]any)}
	}
	return v // strings, numbers, bools, nil: immutable
}

// RegisterComputerPartition fetches one partition.
func (c *Client) RegisterComputerPartition(ctx context.Context, computerID, partitionID string) (*ComputerPartition, error) {
	body, err := c.get(ctx, "registerComputerPartition", field{"computer_reference", computerID}, field{"computer_partition_reference", partitionID})
	if err != nil {
		return nil, err
	}
	v, err := c.unmarshal("registerComputerPartition", body)
	if err != nil {
		return nil, err
	}
	return ParseComputerPartition(v)
}

// LoadComputerConfiguration registers a node and its partitions, as
// `slapos node format` does. Partitions missing from cfg are removed on
// the master.
func (c *Client) LoadComputerConfiguration(ctx context.Context, cfg *ComputerConfiguration) error {
	x, err := dumps(cfg.Map())
	if err != nil {
		return err
	}
	_, err = c.post(ctx, "loadComputerConfigurationFromXML", field{"xml", x})
	return err
}

// Supply asks computerID to install (state available) or remove (state
// destroyed) a software release.
func (c *Client) Supply(ctx context.Context, softwareURL, computerID, state string) error {
	if state == "" {
		state = StateAvailable
	}
	_, err := c.post(ctx, "supplySupply", field{"url", softwareURL}, field{"computer_id", computerID}, field{"state", state})
	return err
}

func (c *Client) softwareCall(ctx context.Context, path, softwareURL, computerID string, extra ...field) error {
	_, err := c.post(ctx, path, append([]field{{"url", softwareURL}, {"computer_id", computerID}}, extra...)...)
	return err
}

// BuildingSoftwareRelease reports that the node started building a release.
func (c *Client) BuildingSoftwareRelease(ctx context.Context, softwareURL, computerID string) error {
	return c.softwareCall(ctx, "buildingSoftwareRelease", softwareURL, computerID)
}

// AvailableSoftwareRelease reports that a release is installed.
func (c *Client) AvailableSoftwareRelease(ctx context.Context, softwareURL, computerID string) error {
	return c.softwareCall(ctx, "availableSoftwareRelease", softwareURL, computerID)
}

// DestroyedSoftwareRelease reports that a release was removed; the master
// forgets it.
func (c *Client) DestroyedSoftwareRelease(ctx context.Context, softwareURL, computerID string) error {
	return c.softwareCall(ctx, "destroyedSoftwareRelease", softwareURL, computerID)
}

// SoftwareReleaseError reports a failed build.
func (c *Client) SoftwareReleaseError(ctx context.Context, softwareURL, computerID, errorLog string) error {
	return c.softwareCall(ctx, "softwareReleaseError", softwareURL, computerID, field{"error_log", errorLog})
}

func (c *Client) partitionCall(ctx context.Context, path, computerID, partitionID string, extra ...field) (string, error) {
	body, err := c.post(ctx, path, append([]field{{"computer_id", computerID}, {"computer_partition_id", partitionID}}, extra...)...)
	return string(body), err
}

// Started reports that a partition's services run.
func (c *Client) Started(ctx context.Context, computerID, partitionID string) error {
	_, err := c.partitionCall(ctx, "startedComputerPartition", computerID, partitionID)
	return err
}

// Stopped reports that a partition's services are stopped.
func (c *Client) Stopped(ctx context.Context, computerID, partitionID string) error {
	_, err := c.partitionCall(ctx, "stoppedComputerPartition", computerID, partitionID)
	return err
}

// Destroyed reports that a partition was emptied. The master answers 200
// even when it refuses (a root whose children still exist): the answer's
// text says so and Destroyed returns it; it is "OK" when the partition was
// freed.
func (c *Client) Destroyed(ctx context.Context, computerID, partitionID string) (string, error) {
	return c.partitionCall(ctx, "destroyedComputerPartition", computerID, partitionID)
}

// InstanceError reports a failed instantiation (slaveReference "" for the
// partition itself).
func (c *Client) InstanceError(ctx context.Context, computerID, partitionID, errorLog, slaveReference string) error {
	extra := []field{{"error_log", errorLog}}
	if slaveReference != "" {
		extra = append(extra, field{"slave_reference", slaveReference})
	}
	_, err := c.partitionCall(ctx, "softwareInstanceError", computerID, partitionID, extra...)
	return err
}

// SetConnectionParameters publishes a partition's connection parameters,
// or a hosted shared instance's when slaveReference is not "".
func (c *Client) SetConnectionParameters(ctx context.Context, computerID, partitionID, slaveReference string, params map[string]any) error {
	x, err := dumps(params)
	if err != nil {
		return err
	}
	ref := slaveReference
	if ref == "" {
		ref = "None" // Python's None, as slapos.slap sends it
	}
	_, err = c.partitionCall(ctx, "setComputerPartitionConnectionXml", computerID, partitionID, field{"connection_xml", x}, field{"slave_reference", ref})
	return err
}

// Bang asks the master to make the partition's whole instance tree be
// processed again.
func (c *Client) Bang(ctx context.Context, computerID, partitionID, message string) error {
	_, err := c.partitionCall(ctx, "softwareInstanceBang", computerID, partitionID, field{"message", message})
	return err
}

// Rename renames the instance a partition hosts.
func (c *Client) Rename(ctx context.Context, computerID, partitionID, newName string) error {
	_, err := c.partitionCall(ctx, "softwareInstanceRename", computerID, partitionID, field{"new_name", newName})
	return err
}

// Certificate returns the partition's certificate and key (empty strings
// from slapproxy-like masters).
func (c *Client) Certificate(ctx context.Context, computerID, partitionID string) (cert, key string, err error) {
	body, err := c.get(ctx, "getComputerPartitionCertificate", field{"computer_id", computerID}, field{"computer_partition_id", partitionID})
	if err != nil {
		return "", "", err
	}
	v, err := c.unmarshal("getComputerPartitionCertificate", body)
	if err != nil {
		return "", "", err
	}
	m, _ := v.(map[string]any)
	return str(m["certificate"]), str(m["key"]), nil
}

// UseComputer sends a usage report (slapos node report); an empty report
// is not sent, as upstream does.
func (c *Client) UseComputer(ctx context.Context, computerID, usage string) error {
	if usage == "" {
		return nil
	}
	_, err := c.post(ctx, "useComputer", field{"computer_id", computerID}, field{"use_string", usage})
	return err
}

// ComputerBang reports a problem with the whole node.
func (c *Client) ComputerBang(ctx context.Context, computerID, message string) error {
	_, err := c.post(ctx, "computerBang", field{"computer_id", computerID}, field{"message", message})
	return err
}

// SoftwareReleaseList lists the URLs of a software product.
func (c *Client) SoftwareReleaseList(ctx context.Context, product string) ([]string, error) {
	body, err := c.get(ctx, "getSoftwareReleaseListFromSoftwareProduct", field{"software_product_reference", product})
	if err != nil {
		return nil, err
	}
	v, err := c.unmarshal("getSoftwareReleaseListFromSoftwareProduct", body)
	if err != nil {
		return nil, err
	}
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, str(e))
	}
	return out, nil
}

// Request asks for an instance. From a user (an "open order"), leave
// ComputerID and PartitionID empty; from an instance requesting a child,
// set them to the requesting partition.
type Request struct {
	ComputerID, PartitionID string // the requester, when a partition requests
	SoftwareURL             string
	SoftwareType            string // "" is "default"
	Reference               string // the instance's title
	Shared                  bool
	Parameters              map[string]any
	Filter                  map[string]any // computer_guid, instance_guid…
	State                   string         // "" keeps the current state (started for a new instance)
}

// Request sends a requestComputerPartition. A 408 (the master has not
// allocated the instance yet) is ErrNotReady, a 404 (no free partition, no
// host for a shared instance) ErrNotFound.
func (c *Client) Request(ctx context.Context, r Request) (*SoftwareInstance, error) {
	typ := r.SoftwareType
	if typ == "" {
		typ = "default"
	}
	params := r.Parameters
	if params == nil {
		params = map[string]any{}
	}
	filter := r.Filter
	if filter == nil {
		filter = map[string]any{}
	}
	var state any
	if r.State != "" {
		state = r.State
	}
	pxml, err := dumps(params)
	if err != nil {
		return nil, fmt.Errorf("request %s: parameters: %w", r.Reference, err)
	}
	fxml, err := dumps(filter)
	if err != nil {
		return nil, fmt.Errorf("request %s: filter: %w", r.Reference, err)
	}
	sxml, _ := dumps(state)
	shxml, _ := dumps(r.Shared)
	var fields []field
	if r.ComputerID != "" || r.PartitionID != "" {
		// The order slapos.slap's ComputerPartition.request uses.
		fields = []field{{"computer_id", r.ComputerID}, {"computer_partition_id", r.PartitionID},
			{"software_release", r.SoftwareURL}, {"software_type", typ}, {"partition_reference", r.Reference},
			{"shared_xml", shxml}, {"partition_parameter_xml", pxml}, {"filter_xml", fxml}, {"state", sxml}}
	} else {
		// OpenOrder.request's order.
		fields = []field{{"software_release", r.SoftwareURL}, {"partition_reference", r.Reference},
			{"partition_parameter_xml", pxml}, {"filter_xml", fxml}, {"software_type", typ},
			{"state", sxml}, {"shared_xml", shxml}}
	}
	body, err := c.post(ctx, "requestComputerPartition", fields...)
	if err != nil {
		return nil, err
	}
	v, err := c.unmarshal("requestComputerPartition", body)
	if err != nil {
		return nil, err
	}
	return ParseSoftwareInstance(v)
}

// Ping checks that the master answers at all.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.get(ctx, "getSoftwareReleaseListFromSoftwareProduct", field{"software_product_reference", "slapnode-ping"})
	return err
}
