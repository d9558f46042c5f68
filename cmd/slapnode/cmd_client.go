package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slapnode/slapnode/node/master"
	"github.com/slapnode/slapnode/node/slap"
	"github.com/slapnode/slapnode/schema"
)

const masterFlagsHelp = `  --master URL        the master (default $SLAPNODE_MASTER, else http://` + defaultMasterListen + `,
                      the embedded 'slapnode master')
  --token TOKEN       credential (default $SLAPNODE_MASTER_TOKEN); not needed on this
                      machine by the master's own user or root
  --cert FILE, --key FILE
                      client certificate for an https master (default $SLAPNODE_MASTER_CERT,
                      $SLAPNODE_MASTER_KEY; slapnode master certificate --admin makes one)
  --ca FILE           CA certificate (PEM) to verify an https master with
                      (slapnode's master: the ca.crt beside its database)
  --json              print JSON instead of a table
`

func init() {
	register(&command{
		name:    "supply",
		summary: "ask a node to install (or remove) a software release",
		usage: `Usage: slapnode supply SOFTWARE NODE [--state available|destroyed] [flags]

Asks node NODE (its computer id) to install the software release SOFTWARE:
a URL, or a local profile path (sent as its absolute path). With
--state destroyed, asks it to remove it.

` + masterFlagsHelp + `
Examples:
  slapnode supply examples/helloweb/software.hcl slapnode
  slapnode supply https://lab.example/software/kvm/software.cfg COMP-1 --master https://master.example:8770
  slapnode supply examples/helloweb/software.hcl slapnode --state destroyed
`,
		run: runSupply,
	})
	register(&command{
		name:    "request",
		summary: "request an instance of a software release from the master",
		usage: `Usage: slapnode request NAME SOFTWARE [--type T] [--param k=v | --params file.json]
                        [--shared] [--state started|stopped|destroyed] [--node ID] [--wait] [flags]

Requests the instance NAME of software release SOFTWARE (a URL or a local
profile path) from the master, which allocates a partition on a node (or, for
--shared, adds it to a matching instance that hosts shared instances).
Requesting again with other parameters or state updates it.

Parameters are validated against the software's schema first, when it can be
found locally: SOFTWARE is a profile (.hcl), a software.cfg.json, a
directory holding one, or a buildout software.cfg with a software.cfg.json
next to it (or give --schema). With json-in-xml serialisation the
parameters travel as one "_" parameter holding their JSON, as SlapOS does.

  --type T            software type (default "default")
  --param K=V         a parameter (repeatable); K:=JSON for a JSON value
  --params FILE       parameters as a JSON object ("-" for stdin)
  --shared            a shared (slave) instance
  --state S           started (default for a new instance), stopped or destroyed
  --node ID           allocate on this computer (filter computer_guid)
  --schema PATH       descriptor or JSON Schema to validate against
  --no-validate       send the parameters without validating them
  --wait              wait until the instance publishes connection parameters
                      (with --state destroyed: until it is gone)
  --timeout D         with --wait, give up after D (default: wait until Ctrl-C)
` + masterFlagsHelp + `
Exit codes: 0 done, 1 refused (invalid parameters, no free partition…),
3 master unreachable, 64 usage error.

Examples:
  slapnode request web examples/helloweb/software.hcl --param greeting=Hi --wait
  slapnode request db https://lab.example/software/mariadb/software.cfg --params db.json
  slapnode request front https://lab.example/software/caddy-frontend/software.cfg --shared --param url=http://[::1]:8080
  slapnode request web examples/helloweb/software.hcl --state stopped
`,
		run: runRequest,
	})
	register(&command{
		name:    "list",
		summary: "list the instances the master knows",
		usage: `Usage: slapnode list [flags]

Lists every instance: its name, requested and reported state, node and
partition, software type and release; then the supplied software releases.
Needs slapnode's master (it reads the JSON API).

` + masterFlagsHelp + `
Example:
  slapnode list
  slapnode list --json | jq '.instances[].title'
`,
		run: runList,
	})
	register(&command{
		name:    "info",
		summary: "show an instance: state, partition, parameters, connection parameters",
		usage: `Usage: slapnode info NAME [--requested-by ROOT] [flags]

Shows the instance NAME: its state, partition and addresses, parameters,
connection parameters, children and shared instances.

  --requested-by ROOT the root of NAME's tree, when several instances share a name
` + masterFlagsHelp + `
Example:
  slapnode info web
`,
		run: runInfo,
	})
	register(&command{
		name:    "destroy",
		summary: "request an instance destroyed (its node then frees the partition)",
		usage: `Usage: slapnode destroy NAME [--requested-by ROOT] [flags]

Requests the instance NAME destroyed, keeping its software and parameters
(as 'slapos request NAME SOFTWARE --state destroyed' does). The node
destroys it, children first, and reports; the master then frees its
partition, whose files and data are deleted. It asks for confirmation on
a terminal, and refuses without one unless -auto-approve ('slapnode
request NAME SOFTWARE --state destroyed' is the scriptable form SlapOS's
client has, and does not ask).

  --requested-by ROOT the root of NAME's tree, when several instances share a name
  -auto-approve       destroy without asking
` + masterFlagsHelp + `
Example:
  slapnode destroy web
  slapnode destroy web -auto-approve
`,
		run: runDestroy,
	})
	register(&command{
		name:    "remove",
		summary: "ask a node to remove a software release (as slapos remove)",
		usage: `Usage: slapnode remove SOFTWARE NODE [flags]

Asks node NODE to remove the software release SOFTWARE, as 'slapos remove'
does: the same as 'slapnode supply SOFTWARE NODE --state destroyed'. The
node deletes the release and reports; the master then forgets it.

To destroy an instance, use 'slapnode destroy NAME'. 'slapnode remove NAME'
with one argument still destroys the instance NAME, as it did before
slapnode's words were aligned with SlapOS's, and says so: it is deprecated.

` + masterFlagsHelp + `
Examples:
  slapnode remove https://lab.example/software/kvm/software.cfg COMP-1
  slapnode remove examples/helloweb/software.hcl slapnode
`,
		run: runRemove,
	})
}

// masterFlags are the flags every client command takes.
type masterFlags struct {
	url, token, ca string
	cert, key      string
	asJSON         bool
}

func (f *masterFlags) define(fs *flag.FlagSet) {
	def := os.Getenv("SLAPNODE_MASTER")
	if def == "" {
		def = "http://" + defaultMasterListen
	}
	fs.StringVar(&f.url, "master", def, "master URL")
	fs.StringVar(&f.token, "token", os.Getenv("SLAPNODE_MASTER_TOKEN"), "credential")
	fs.StringVar(&f.ca, "ca", "", "CA certificate")
	fs.StringVar(&f.cert, "cert", os.Getenv("SLAPNODE_MASTER_CERT"), "client certificate")
	fs.StringVar(&f.key, "key", os.Getenv("SLAPNODE_MASTER_KEY"), "client certificate's key")
	fs.BoolVar(&f.asJSON, "json", false, "JSON output")
}

func (f *masterFlags) httpClient() (*http.Client, error) {
	if f.ca == "" && f.cert == "" && f.key == "" {
		return &http.Client{Timeout: 60 * time.Second}, nil
	}
	h, err := slap.TLSFiles{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca}.HTTPClient()
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--cert/--key/--ca: %w", err))
	}
	return h, nil
}

func (f *masterFlags) client() (*slap.Client, error) {
	var opts []slap.ClientOption
	if f.ca != "" || f.cert != "" || f.key != "" {
		opts = append(opts, slap.WithTLS(slap.TLSFiles{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca}))
	}
	if f.token != "" {
		opts = append(opts, slap.WithToken(f.token))
	}
	c, err := slap.NewClient(f.url, opts...)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return c, nil
}

// explain adds what to do to an error from the master.
func (f *masterFlags) explain(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "unreachable") {
		if f.url == "http://"+defaultMasterListen {
			err = fmt.Errorf("%w\n(no master there: start one with 'slapnode master', or give --master URL)", err)
		}
		return withCode(exitOffline, err)
	}
	if errors.Is(err, slap.ErrNotFound) && strings.Contains(err.Error(), "No free computer partition found") {
		return fmt.Errorf("%w\n(every partition of the node is busy, or no node registered under that id: see 'slapnode list', or choose one with --node)", err)
	}
	var cerr *slap.CertificateError
	if errors.As(err, &cerr) {
		return withCode(exitFailure, err)
	}
	if errors.Is(err, slap.ErrAuth) {
		return withCode(exitFailure, fmt.Errorf("%w\n(give a credential: --token or $SLAPNODE_MASTER_TOKEN from 'slapnode master token --admin', or --cert/--key from 'slapnode master certificate --admin')", err))
	}
	return err
}

// api calls the master's JSON API.
func (f *masterFlags) api(ctx context.Context, method, path string, body, out any) error {
	h, err := f.httpClient()
	if err != nil {
		return err
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(f.url, "/")+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := h.Do(req)
	if err != nil {
		if c, cerr := f.client(); cerr == nil {
			if cerr := c.CertificateError(ctx, err); cerr != nil {
				return f.explain(cerr)
			}
		}
		return f.explain(fmt.Errorf("master %s unreachable: %w", f.url, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return f.explain(&slap.HTTPError{Endpoint: path, Status: resp.StatusCode,
				Message: "not a slapnode master JSON API answer (list, info and remove need slapnode's master)"})
		}
		return f.explain(&slap.HTTPError{Endpoint: path, Status: resp.StatusCode, Message: e.Error})
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("master's answer to %s: %w", path, err)
	}
	return nil
}

// softwareURL turns a local profile path into the absolute path sent to
// the master (SlapOS accepts local paths as release URLs); URLs pass as is.
func softwareURL(s string) (string, bool) {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		return s, false
	}
	if abs, err := filepath.Abs(s); err == nil {
		return abs, true
	}
	return s, true
}

func runSupply(env *cliEnv, args []string) error {
	fs := newFlags("supply")
	var mf masterFlags
	mf.define(fs)
	state := fs.String("state", slap.StateAvailable, "available or destroyed")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return withCode(exitUsage, errors.New("give SOFTWARE and NODE, e.g. slapnode supply examples/helloweb/software.hcl slapnode"))
	}
	if *state != slap.StateAvailable && *state != slap.StateDestroyed {
		return withCode(exitUsage, fmt.Errorf("--state %s: use available or destroyed", *state))
	}
	sw, local := softwareURL(pos[0])
	if local && *state == slap.StateAvailable {
		if _, err := os.Stat(sw); err != nil {
			return withCode(exitUsage, fmt.Errorf("software %s: %w (give a URL or an existing profile)", pos[0], err))
		}
	}
	c, err := mf.client()
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	if err := c.Supply(ctx, sw, pos[1], *state); err != nil {
		return mf.explain(err)
	}
	if mf.asJSON {
		return env.writeJSON(jsonSupply{URL: sw, Computer: pos[1], RequestedState: *state})
	}
	fmt.Fprintf(env.stdout, "supplied %s to %s (%s)\n", sw, pos[1], *state)
	return nil
}

// jsonSupply is supply --json.
type jsonSupply struct {
	URL            string `json:"url"`
	Computer       string `json:"computer"`
	RequestedState string `json:"requested_state"` // available or destroyed
}

type requestFlags struct {
	masterFlags
	typ, paramsFile, state, node, schemaPath string
	params                                   stringList
	shared, wait, noValidate                 bool
	timeout                                  time.Duration
}

// requestParameters reads --params and --param; strs tells whether any
// value is a string that stands for another type (K=V pairs).
func (r *requestFlags) parameters(env *cliEnv) (map[string]any, bool, error) {
	params := map[string]any{}
	if r.paramsFile != "" {
		p, _, err := readParams(env, r.paramsFile)
		if err != nil {
			return nil, false, fmt.Errorf("--params: %w", err)
		}
		params = p
	}
	kv, err := schema.ParseKeyValues(r.params)
	if err != nil {
		return nil, false, withCode(exitUsage, err)
	}
	strs := false
	for _, p := range r.params {
		if k, _, _ := strings.Cut(p, "="); !strings.HasSuffix(k, ":") {
			strs = true
		}
	}
	for k, v := range kv {
		params[k] = v
	}
	return params, strs, nil
}

// descriptorFor finds the schema of a software release, if it is local.
func descriptorFor(software, schemaPath string) (*schema.Descriptor, error) {
	if schemaPath != "" {
		return loadSoftware(schemaPath)
	}
	if _, local := softwareURL(software); !local {
		return nil, nil
	}
	if strings.HasSuffix(software, ".cfg") {
		if _, err := os.Stat(software + ".json"); err == nil {
			return loadSoftware(software + ".json")
		}
		return nil, nil
	}
	if _, err := os.Stat(software); err != nil {
		return nil, fmt.Errorf("software %s: %w (give a URL or an existing profile)", software, err)
	}
	return loadSoftware(software)
}

// jsonInXML is how SlapOS sends parameters of json-in-xml software: one
// "_" parameter holding the JSON document (json.dumps(params, indent=2)).
func jsonInXML(params map[string]any) (map[string]any, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(params); err != nil {
		return nil, err
	}
	return map[string]any{"_": strings.TrimSuffix(b.String(), "\n")}, nil
}

func runRequest(env *cliEnv, args []string) error {
	fs := newFlags("request")
	var r requestFlags
	r.define(fs)
	fs.StringVar(&r.typ, "type", schema.DefaultSoftwareType, "software type")
	fs.Var(&r.params, "param", "KEY=VALUE parameter")
	fs.StringVar(&r.paramsFile, "params", "", "JSON parameters file")
	fs.BoolVar(&r.shared, "shared", false, "shared instance")
	fs.StringVar(&r.state, "state", "", "requested state")
	fs.StringVar(&r.node, "node", "", "computer id")
	fs.StringVar(&r.schemaPath, "schema", "", "schema to validate against")
	fs.BoolVar(&r.noValidate, "no-validate", false, "skip validation")
	fs.BoolVar(&r.wait, "wait", false, "wait for connection parameters")
	fs.DurationVar(&r.timeout, "timeout", 0, "how long --wait waits")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return withCode(exitUsage, errors.New("give NAME and SOFTWARE, e.g. slapnode request web examples/helloweb/software.hcl"))
	}
	name, software := pos[0], pos[1]
	if r.state != "" && r.state != slap.StateStarted && r.state != slap.StateStopped && r.state != slap.StateDestroyed {
		return withCode(exitUsage, fmt.Errorf("--state %s: use started, stopped or destroyed", r.state))
	}
	params, strs, err := r.parameters(env)
	if err != nil {
		return err
	}
	sw, _ := softwareURL(software)
	send := params
	if !r.noValidate {
		d, err := descriptorFor(software, r.schemaPath)
		if err != nil {
			return err
		}
		if d != nil {
			if send, err = validateRequest(env, d, r.typ, r.shared, params, strs); err != nil {
				return err
			}
		} else if r.paramsFile != "" {
			// No schema: SlapOS then sends a parameters file as
			// json-in-xml, and K=V pairs as plain keys.
			fromFile := map[string]any{}
			for k, v := range params {
				if _, fromPair := findPair(r.params, k); !fromPair {
					fromFile[k] = v
				}
			}
			if send, err = jsonInXML(fromFile); err != nil {
				return err
			}
			for k, v := range params {
				if _, fromPair := findPair(r.params, k); fromPair {
					send[k] = v
				}
			}
		} else if env.verbose {
			fmt.Fprintf(env.stderr, "note: no local schema for %s: parameters sent unvalidated\n", software)
		}
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	if r.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	req := slap.Request{SoftwareURL: sw, SoftwareType: r.typ, Reference: name, Shared: r.shared, Parameters: send, State: r.state}
	if r.node != "" {
		req.Filter = map[string]any{"computer_guid": r.node}
	}
	inst, err := c.Request(ctx, req)
	// What the wait is for is said once, then again only when it changes
	// (a partition is allocated); a terminal shows the time waited.
	waiting, endWait := "", func() {}
	for r.wait && err == nil && r.state != slap.StateDestroyed && len(inst.ConnectionDict) == 0 || r.wait && errors.Is(err, slap.ErrNotReady) {
		what := fmt.Sprintf("waiting for the master to place %s", name)
		if err == nil {
			what = fmt.Sprintf("waiting for %s to publish its connection parameters (partition %s)", name, inst.PartitionID)
		}
		if what != waiting {
			endWait()
			waiting, endWait = what, env.stepNow(what)
		}
		if !sleepCtx(ctx, requestPoll) {
			endWait()
			return fmt.Errorf("gave up waiting for %s's connection parameters: %w", name, ctx.Err())
		}
		inst, err = c.Request(ctx, req)
	}
	endWait()
	if err != nil {
		if errors.Is(err, slap.ErrNotFound) {
			return withCode(exitFailure, r.explain(err))
		}
		return r.explain(err)
	}
	if r.wait && r.state == slap.StateDestroyed {
		done := env.stepNow(fmt.Sprintf("waiting for %s to be destroyed", name))
		err := waitGone(ctx, &r.masterFlags, name)
		done()
		if err != nil {
			return err
		}
	}
	return printRequest(env, name, inst, r.asJSON)
}

func findPair(pairs []string, key string) (string, bool) {
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		if strings.TrimSuffix(k, ":") == key {
			return v, true
		}
	}
	return "", false
}

// validateRequest validates params against the software type's schema and
// returns what to send: the parameters as given (the software applies its
// own defaults), wrapped in "_" for json-in-xml software.
func validateRequest(env *cliEnv, d *schema.Descriptor, typ string, shared bool, params map[string]any, strs bool) (map[string]any, error) {
	st, err := d.Lookup(typ, shared)
	if err != nil {
		return nil, withCode(exitFailure, err)
	}
	v, err := d.Validator(typ, shared, schema.Options{})
	if err != nil {
		return nil, err
	}
	ser := d.SerialisationOf(st)
	var verr error
	if ser == schema.SerialisationXML || strs {
		_, verr = v.ValidateStrings(params)
	} else {
		_, verr = v.Validate(params)
	}
	var ve *schema.ValidationError
	if errors.As(verr, &ve) {
		return nil, withCode(exitFailure, fmt.Errorf("not sent: %d invalid parameter(s) for software type %q:\n%w", len(ve.Violations), st.TypeName(), ve))
	}
	if verr != nil {
		return nil, verr
	}
	if ser == schema.SerialisationJSONInXML {
		return jsonInXML(params)
	}
	return params, nil
}

// requestPoll is how often request --wait asks the master again.
var requestPoll = 2 * time.Second

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitGone polls the JSON API until the instance no longer exists.
func waitGone(ctx context.Context, mf *masterFlags, name string) error {
	for {
		err := mf.api(ctx, http.MethodGet, "/api/v1/instances/"+url.PathEscape(name), nil, nil)
		if errors.Is(err, slap.ErrNotFound) && strings.Contains(err.Error(), "no instance named") {
			return nil
		}
		if err != nil {
			return err
		}
		if !sleepCtx(ctx, requestPoll) {
			return fmt.Errorf("gave up waiting for %s to be destroyed: %w", name, ctx.Err())
		}
	}
}

// connectionStrings decodes json-in-xml connection parameters ("_" holding
// JSON), as slapos request does, and shows every value as a string.
func connectionStrings(conn map[string]any) map[string]string {
	out := slap.StringDict(conn)
	if j, ok := out["_"]; ok && len(out) == 1 {
		var m map[string]any
		if json.Unmarshal([]byte(j), &m) == nil {
			out = map[string]string{}
			for k, v := range m {
				if s, ok := v.(string); ok {
					out[k] = s
				} else {
					b, _ := json.Marshal(v)
					out[k] = string(b)
				}
			}
		}
	}
	return out
}

// jsonRequest is request --json.
type jsonRequest struct {
	Title          string            `json:"title"`
	Shared         bool              `json:"shared"`
	InstanceGUID   string            `json:"instance_guid,omitempty"`
	Computer       string            `json:"computer"`
	Partition      string            `json:"partition"`
	RequestedState string            `json:"requested_state"`
	SoftwareURL    string            `json:"software_url"`
	SoftwareType   string            `json:"software_type"`
	Parameters     map[string]string `json:"parameters"`
	Connection     map[string]string `json:"connection"`
	IPList         [][2]string       `json:"ip_list"`
}

func printRequest(env *cliEnv, name string, inst *slap.SoftwareInstance, asJSON bool) error {
	conn := connectionStrings(inst.ConnectionDict)
	if asJSON {
		params := slap.StringDict(inst.Parameters())
		if params == nil {
			params = map[string]string{}
		}
		if conn == nil {
			conn = map[string]string{}
		}
		return env.writeJSON(jsonRequest{Title: name, Shared: inst.Shared, InstanceGUID: inst.InstanceGUID,
			Computer: inst.ComputerID, Partition: inst.PartitionID, RequestedState: inst.RequestedState,
			SoftwareURL: inst.SoftwareURL, SoftwareType: inst.SoftwareType, Parameters: params, Connection: conn, IPList: nonNil(inst.IPList)})
	}
	w := env.stdout
	state := inst.RequestedState
	if inst.Shared {
		state = "shared, hosted"
	}
	fmt.Fprintf(w, "%s: %s on %s/%s (%s)\n", name, state, inst.ComputerID, inst.PartitionID, inst.SoftwareType)
	if len(conn) == 0 {
		fmt.Fprintln(w, "no connection parameters yet (request again, or add --wait)")
		return nil
	}
	fmt.Fprintln(w, "connection parameters:")
	printKV(w, conn)
	return nil
}

func printKV(w io.Writer, m map[string]string) {
	for _, k := range slap.SortedKeys(m) {
		fmt.Fprintf(w, "  %s = %s\n", k, m[k])
	}
}

func runList(env *cliEnv, args []string) error {
	fs := newFlags("list")
	var mf masterFlags
	mf.define(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return withCode(exitUsage, fmt.Errorf("unexpected argument %q (see 'slapnode help list')", pos[0]))
	}
	ctx, cancel := signalContext()
	defer cancel()
	var list []master.Instance
	if err := mf.api(ctx, http.MethodGet, "/api/v1/instances", nil, &list); err != nil {
		return err
	}
	var st master.Status
	if err := mf.api(ctx, http.MethodGet, "/api/v1/status", nil, &st); err != nil {
		return err
	}
	if mf.asJSON {
		for i := range list {
			list[i] = instanceJSON(list[i])
		}
		return env.writeJSON(jsonList{Instances: nonNil(list), Software: nonNil(st.Software), Computers: nonNil(st.Computers)})
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tREPORTED\tNODE\tPARTITION\tTYPE\tSOFTWARE")
	for _, i := range list {
		n := i.Title
		if i.RequestedBy != "" {
			n = i.RequestedBy + " > " + i.Title
		}
		part := i.Partition
		if i.Shared {
			part = "(shared on " + i.Partition + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, i.RequestedState, dash(i.ReportedState), i.Computer, part, i.SoftwareType, i.SoftwareURL)
	}
	tw.Flush()
	if len(list) == 0 {
		fmt.Fprintln(env.stdout, "(no instances)")
	}
	if len(st.Software) > 0 {
		fmt.Fprintln(env.stdout)
		tw = tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SOFTWARE\tNODE\tSTATE\tREPORTED")
		for _, s := range st.Software {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.URL, s.Computer, s.RequestedState, dash(s.ReportedState))
		}
		tw.Flush()
	}
	return nil
}

// jsonList is list --json: the master's JSON API types (docs/api.md).
type jsonList struct {
	Instances []master.Instance `json:"instances"`
	Software  []master.Software `json:"software"`
	Computers []master.Computer `json:"computers"`
}

// instanceJSON fills the lists and objects of an instance the API left
// null.
func instanceJSON(i master.Instance) master.Instance {
	if i.Parameters == nil {
		i.Parameters = map[string]any{}
	}
	if i.Connection == nil {
		i.Connection = map[string]string{}
	}
	if i.IPList == nil {
		i.IPList = [][2]string{}
	}
	return i
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func instancePath(name, requestedBy string, given bool) string {
	p := "/api/v1/instances/" + url.PathEscape(name)
	if given {
		p += "?requested_by=" + url.QueryEscape(requestedBy)
	}
	return p
}

func runInfo(env *cliEnv, args []string) error    { return infoOrDestroy(env, "info", args, false) }
func runDestroy(env *cliEnv, args []string) error { return infoOrDestroy(env, "destroy", args, true) }

// runRemove is slapos remove: a software release removed from a node. With
// one argument, the instance destruction it meant before (deprecated).
func runRemove(env *cliEnv, args []string) error {
	fs := newFlags("remove")
	var mf masterFlags
	mf.define(fs)
	fs.String("requested-by", "", "root of the instance's tree (deprecated form)")
	fs.Bool("auto-approve", false, "destroy without asking (deprecated form)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 1:
		fmt.Fprintf(env.stderr, "note: 'slapnode remove NAME' is deprecated: 'remove' now means what 'slapos remove' does (remove a software release from a node: slapnode remove SOFTWARE NODE); use 'slapnode destroy %s' to destroy an instance\n", pos[0])
		return infoOrDestroy(env, "destroy", args, true)
	case 2:
		return runSupply(env, append(args, "--state", slap.StateDestroyed))
	}
	return withCode(exitUsage, errors.New("give SOFTWARE and NODE, e.g. slapnode remove examples/helloweb/software.hcl slapnode (to destroy an instance: slapnode destroy NAME)"))
}

func infoOrDestroy(env *cliEnv, name string, args []string, remove bool) error {
	fs := newFlags(name)
	var mf masterFlags
	mf.define(fs)
	by := fs.String("requested-by", "", "root of the instance's tree")
	autoApprove := false
	if remove {
		fs.BoolVar(&autoApprove, "auto-approve", false, "destroy without asking")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, fmt.Errorf("give one instance NAME (see 'slapnode help %s')", name))
	}
	byGiven := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "requested-by" {
			byGiven = true
		}
	})
	if remove && !autoApprove {
		if err := confirmDestroy(env, "instance "+pos[0], "'slapnode info "+pos[0]+"'"); err != nil {
			return err
		}
	}
	ctx, cancel := signalContext()
	defer cancel()
	method := http.MethodGet
	if remove {
		method = http.MethodDelete
	}
	var inst master.Instance
	if err := mf.api(ctx, method, instancePath(pos[0], *by, byGiven), nil, &inst); err != nil {
		if errors.Is(err, slap.ErrNotFound) {
			return withCode(exitFailure, err)
		}
		return err
	}
	if mf.asJSON {
		return env.writeJSON(instanceJSON(inst))
	}
	if remove {
		fmt.Fprintf(env.stdout, "%s: requested destroyed; node %s will free partition %s\n", inst.Title, inst.Computer, inst.Partition)
		return nil
	}
	printInstance(env.stdout, &inst)
	return nil
}

func printInstance(w io.Writer, i *master.Instance) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("name", i.Title)
	row("requested by", i.RequestedBy)
	if i.Shared {
		row("shared", "yes, reference "+i.SharedReference)
	}
	row("software", i.SoftwareURL)
	row("type", i.SoftwareType)
	row("state", i.RequestedState)
	row("reported", i.ReportedState)
	row("error", i.Error)
	row("node", i.Computer)
	row("partition", i.Partition)
	var ips []string
	for _, a := range i.IPList {
		ips = append(ips, a[1]+" ("+a[0]+")")
	}
	row("addresses", strings.Join(ips, ", "))
	row("timestamp", i.Timestamp)
	row("children", strings.Join(i.Children, ", "))
	row("shared instances", strings.Join(i.SharedInstances, ", "))
	tw.Flush()
	if len(i.Parameters) > 0 {
		fmt.Fprintln(w, "parameters:")
		printKV(w, slap.StringDict(i.Parameters))
	}
	conn := map[string]any{}
	for k, v := range i.Connection {
		conn[k] = v
	}
	if c := connectionStrings(conn); len(c) > 0 {
		fmt.Fprintln(w, "connection parameters:")
		printKV(w, c)
	} else {
		fmt.Fprintln(w, "no connection parameters yet")
	}
	if len(i.Usage) > 0 {
		fmt.Fprintln(w, "usage (last report of its node):")
		names := make([]string, 0, len(i.Usage))
		for n := range i.Usage {
			names = append(names, n)
		}
		sort.Strings(names)
		uw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, n := range names {
			u := i.Usage[n]
			fmt.Fprintf(uw, "  %s\t%.3f %s\t%s\n", n, u.Quantity, u.Unit, u.Date)
		}
		uw.Flush()
	}
}
