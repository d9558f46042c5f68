package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/slapnode/slapnode/node/local"
	"github.com/slapnode/slapnode/schema"
)

func init() {
	register(&command{
		name:    "validate",
		summary: "check a profile (every mistake at once), or instance parameters against a release's JSON Schema",
		usage: `Usage: slapnode validate PROFILE [--type TYPE] [--param KEY=VALUE]...
       slapnode validate (--software PATH | --schema FILE) [--type TYPE] [--shared]
                         [--param KEY=VALUE]... [--param KEY:=JSON]... [PARAMS]

With PROFILE (a software.hcl, a software.cfg, or a directory holding
software.hcl), checks the profile and the instance profiles of its software
types as plan does, without a node: every mistake at once, each with
file:line:col and the source line — options a recipe or a promise check does
not take (with the closest one it does), values of the wrong type, unknown
recipes, blocks and attributes, references to nothing. With --param, the
parameters are then validated against the software type's schema.

Otherwise, validates instance parameters the way slapnode does before applying
a profile or sending a request: every violation is printed at once, each with
the JSON pointer of the offending value. The schema's defaults are applied and
listed.

  --software PATH     the software release: a software*.cfg.json descriptor
                      (SlapOS layout), a directory holding one, or a JSON Schema
  --schema FILE       a plain JSON Schema file instead of a descriptor
  --type TYPE         software type (default "default")
  --shared            validate for a shared (slave) instance of the type
  --param K=V         a parameter whose value is the string V (repeatable)
  --param K:=JSON     a parameter with a JSON value: port:=8080, tags:='["a"]'
  PARAMS              a file (or - for stdin) of parameters: a JSON object, or
                      SlapOS instance XML (<instance><parameter id="k">v</parameter>
                      …</instance>, or the json-in-xml form with one "_" parameter);
                      --param values override the file's
  --serialisation S   xml or json-in-xml: how the parameters travel (default:
                      the software type's). With xml every value is a string on
                      the wire and is converted to the schema's type.
  --json              print the complete parameters (defaults applied) as JSON
  --allow-remote-refs allow fetching http(s) $ref targets (never done otherwise)
  --assert-format     treat "format" as an assertion (SlapOS does not)
  --strict            refuse schemas that do not conform to their meta-schema
  --root DIR          with PROFILE: the node root whose module cache describes the
                      recipes (default as apply's)

String values are converted to the schema's type when they travel as strings:
xml serialisation, plain instance XML, or --param K=V.

Exit status: 0 valid, 1 invalid parameters or unreadable schema, 64 usage error.

Examples:
  slapnode validate examples/helloweb/software.hcl
  slapnode validate examples/helloweb --param port:=8481
  slapnode validate --software software/kvm/software.cfg.json --param ram-size:=4096
  slapnode validate --software software/caucase params.json --json
  slapnode validate --schema instance-input-schema.json --param port=8080
  slapnode validate --software software/ssh --type default instance.xml
`,
		run: runValidate,
	})
	register(&command{
		name:    "schema show",
		summary: "summarise the software types and parameters of a software release",
		usage: `Usage: slapnode schema show PATH [--type TYPE] [--shared] [--depth N] [--json]

Prints what a software release accepts: its software types, their
serialisation and schemas, and for each parameter its type, default,
constraints, title and description.

  PATH                a software*.cfg.json descriptor, a directory holding one,
                      or a JSON Schema
  --type TYPE         only this software type
  --shared            with --type: the shared (slave) variant of the type
  --depth N           show nested parameters down to N levels (default 3)
  --json              print the parameters as JSON (one object per type)
  --allow-remote-refs allow fetching http(s) $ref targets

Examples:
  slapnode schema show software/kvm/software.cfg.json
  slapnode schema show software/mail-server-relay --type cluster --shared
`,
		run: runSchemaShow,
	})
}

// descriptorLoader reads one kind of file as a software descriptor.
type descriptorLoader struct {
	name  string
	match func(path string) bool
	load  func(path string) (*schema.Descriptor, error)
}

// descriptorLoaders turn a --software path into a Descriptor: the first
// whose match accepts the path is used. The HCL profile loader registers
// itself here (match on ".hcl") so that validate and schema show accept
// profiles too.
var descriptorLoaders = []descriptorLoader{
	{name: "SlapOS software descriptor", match: isDescriptorJSON, load: schema.LoadDescriptor},
	{name: "JSON Schema", match: func(p string) bool { return strings.HasSuffix(p, ".json") }, load: schemaFileDescriptor},
}

// softwareDirFiles are looked for, in order, when --software is a
// directory.
var softwareDirFiles = []string{"software.hcl", "software.cfg.json"}

// loadSoftware turns a path into a Descriptor.
func loadSoftware(path string) (*schema.Descriptor, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		for _, name := range softwareDirFiles {
			p := filepath.Join(path, name)
			if _, err := os.Stat(p); err == nil && findLoader(p) != nil {
				return loadSoftware(p)
			}
		}
		return nil, fmt.Errorf("%s: no software descriptor in this directory (looked for %s)", path, strings.Join(softwareDirFiles, ", "))
	}
	l := findLoader(path)
	if l == nil {
		var kinds []string
		for _, l := range descriptorLoaders {
			kinds = append(kinds, l.name)
		}
		return nil, fmt.Errorf("%s: not a file slapnode can read as a software description (known: %s)", path, strings.Join(kinds, ", "))
	}
	return l.load(path)
}

func findLoader(path string) *descriptorLoader {
	for i := range descriptorLoaders {
		if descriptorLoaders[i].match(path) {
			return &descriptorLoaders[i]
		}
	}
	return nil
}

// isDescriptorJSON recognises software*.cfg.json, and any JSON file with a
// top-level "software-type" (a descriptor under another name).
func isDescriptorJSON(path string) bool {
	if strings.HasSuffix(path, ".cfg.json") {
		return true
	}
	if !strings.HasSuffix(path, ".json") {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	_, ok := top["software-type"]
	return ok
}

// schemaFileDescriptor makes a one-type ("default") descriptor of a plain
// JSON Schema file.
func schemaFileDescriptor(path string) (*schema.Descriptor, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, err
	}
	d := schema.NewDescriptor(filepath.Base(path), filepath.Dir(abs))
	d.Path = path
	if err := d.AddType(&schema.SoftwareType{Key: schema.DefaultSoftwareType, Request: abs}); err != nil {
		return nil, err
	}
	return d, nil
}

// readParams reads a parameter file: instance XML when it starts with '<',
// JSON otherwise. serialisation is "" for JSON.
func readParams(env *cliEnv, path string) (map[string]any, string, error) {
	var r io.Reader
	if path == "-" {
		r = env.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReader(r)
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, "", fmt.Errorf("%s: empty parameter file", path)
			}
			return nil, "", err
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' || b[0] == 0xEF || b[0] == 0xBB || b[0] == 0xBF {
			_, _ = br.ReadByte() // whitespace or a UTF-8 byte-order mark
			continue
		}
		if b[0] == '<' {
			m, ser, err := schema.ParseInstanceXML(br)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", path, err)
			}
			return m, ser, nil
		}
		m, err := schema.DecodeJSON(br)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return m, "", nil
	}
}

// isProfilePath tells a profile (software.hcl, software.cfg, or a
// directory holding software.hcl) from a parameters file.
func isProfilePath(p string) bool {
	if strings.HasSuffix(p, ".hcl") || strings.HasSuffix(p, ".cfg") {
		return true
	}
	st, err := os.Stat(filepath.Join(p, "software.hcl"))
	return err == nil && !st.IsDir()
}

// jsonValidateProfile is validate PROFILE --json.
type jsonValidateProfile struct {
	Valid         bool     `json:"valid"`
	Profile       string   `json:"profile"`
	Files         []string `json:"files"`
	SoftwareTypes []string `json:"software_types"`
}

// validateProfile checks a software profile and the instance profiles of
// its software types, every mistake at once.
func validateProfile(env *cliEnv, root, path string) (*jsonValidateProfile, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "software.hcl")
	}
	ctx, cancel := signalContext()
	defer cancel()
	n, err := local.Open(ctx, root, nil)
	if err != nil {
		return nil, err
	}
	defer n.Close(context.Background())
	n.Engine.Step = env.step
	sw, err := n.Engine.LoadSoftware(path)
	if err != nil {
		return nil, err
	}
	if err := n.Engine.Check(ctx, sw); err != nil {
		return nil, err
	}
	doc := &jsonValidateProfile{Valid: true, Profile: path, Files: nonNil(sw.Profile.Files), SoftwareTypes: []string{}}
	for name, it := range sw.Types {
		doc.SoftwareTypes = append(doc.SoftwareTypes, name)
		if !slices.Contains(doc.Files, it.Profile) && sw.Legacy == nil {
			doc.Files = append(doc.Files, it.Profile)
		}
	}
	sort.Strings(doc.SoftwareTypes)
	return doc, nil
}

func runValidate(env *cliEnv, args []string) error {
	fs := newFlags("validate")
	software := fs.String("software", "", "software descriptor, directory or JSON Schema")
	schemaFile := fs.String("schema", "", "plain JSON Schema file")
	typ := fs.String("type", schema.DefaultSoftwareType, "software type")
	shared := fs.Bool("shared", false, "shared (slave) instance")
	var pairs stringList
	fs.Var(&pairs, "param", "KEY=VALUE or KEY:=JSON (repeatable)")
	serFlag := fs.String("serialisation", "", "xml or json-in-xml")
	asJSON := fs.Bool("json", false, "print the complete parameters as JSON")
	remote := fs.Bool("allow-remote-refs", false, "allow http(s) $ref")
	assertFormat := fs.Bool("assert-format", false, "assert format")
	strict := fs.Bool("strict", false, "refuse non-conforming schemas")
	root := fs.String("root", defaultRoot(), "node root (its module cache)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return withCode(exitUsage, fmt.Errorf(format+" (see 'slapnode help validate')", a...))
	}
	if *software == "" && *schemaFile == "" && len(pos) == 1 && isProfilePath(pos[0]) {
		// slapnode validate PROFILE: the profiles first, all their
		// mistakes at once; then the parameters given, if any.
		doc, err := validateProfile(env, *root, pos[0])
		if err != nil {
			return err
		}
		if len(pairs) == 0 {
			if *asJSON {
				return env.writeJSON(doc)
			}
			fmt.Fprintf(env.stdout, "%s: valid (%d files, software types: %s)\n", pos[0], len(doc.Files), strings.Join(doc.SoftwareTypes, ", "))
			return nil
		}
		*software, pos = pos[0], nil
	}
	if (*software == "") == (*schemaFile == "") {
		return usage("give exactly one of --software and --schema")
	}
	if len(pos) > 1 {
		return usage("at most one PARAMS file, got %d", len(pos))
	}
	if *serFlag != "" && *serFlag != schema.SerialisationXML && *serFlag != schema.SerialisationJSONInXML {
		return usage("--serialisation must be %s or %s, not %q", schema.SerialisationXML, schema.SerialisationJSONInXML, *serFlag)
	}

	var d *schema.Descriptor
	if *schemaFile != "" {
		d, err = schemaFileDescriptor(*schemaFile)
	} else {
		d, err = loadSoftware(*software)
	}
	if err != nil {
		return err
	}
	st, err := d.Lookup(*typ, *shared)
	if err != nil {
		return err
	}
	opts := schema.Options{AllowRemoteRefs: *remote, AssertFormat: *assertFormat, Strict: *strict}
	v, err := d.Validator(*typ, *shared, opts)
	if err != nil {
		return err
	}
	for _, w := range v.Warnings() {
		fmt.Fprintf(env.stderr, "warning: %s\n", w)
	}
	warnings := nonNil(v.Warnings())

	params := map[string]any{}
	inputSer := ""
	if len(pos) == 1 {
		params, inputSer, err = readParams(env, pos[0])
		if err != nil {
			return err
		}
	}
	kv, err := schema.ParseKeyValues(pairs)
	if err != nil {
		return withCode(exitUsage, err)
	}
	stringPairs := false
	for _, p := range pairs {
		if k, _, _ := strings.Cut(p, "="); !strings.HasSuffix(k, ":") {
			stringPairs = true
		}
	}
	for k, val := range kv {
		params[k] = val
	}

	ser := d.SerialisationOf(st)
	if *serFlag != "" {
		ser = *serFlag
	}
	coerce := ser == schema.SerialisationXML || inputSer == schema.SerialisationXML || stringPairs
	var res *schema.Result
	if coerce {
		res, err = v.ValidateStrings(params)
	} else {
		res, err = v.Validate(params)
	}
	what := fmt.Sprintf("software type %q", st.TypeName())
	if st.Shared {
		what += " (shared)"
	}
	if d.Name != "" {
		what += " of " + d.Name
	}
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		n := len(ve.Violations)
		plural := "s"
		if n == 1 {
			plural = ""
		}
		if env.verbose {
			for _, vi := range ve.Violations {
				fmt.Fprintf(env.stderr, "  %s  [%s at %s]\n", vi.Message, vi.Keyword, vi.SchemaLocation)
			}
		}
		return withCode(exitFailure, fmt.Errorf("%d invalid parameter%s for %s:\n%w", n, plural, what, ve))
	}
	if err != nil {
		return err
	}

	if *asJSON {
		return env.writeJSON(jsonValidate{Valid: true, SoftwareType: st.TypeName(), Shared: st.Shared, Serialisation: ser,
			Parameters: userData(res.Params), DefaultsApplied: nonNil(res.Defaults), ConvertedFromStrings: nonNil(res.Coerced),
			InvalidDefaults: nonNil(res.InvalidDefaults), Warnings: warnings})
	}
	info := env.stdout
	fmt.Fprintf(info, "parameters valid for %s (%s)\n", what, ser)
	if len(res.Defaults) > 0 {
		fmt.Fprintf(info, "defaults applied: %s\n", strings.Join(res.Defaults, ", "))
	}
	if len(res.Coerced) > 0 {
		fmt.Fprintf(info, "converted from strings: %s\n", strings.Join(res.Coerced, ", "))
	}
	if len(res.InvalidDefaults) > 0 {
		fmt.Fprintf(info, "schema defaults left out because they do not validate: %s\n", strings.Join(res.InvalidDefaults, ", "))
	}
	return nil
}

// jsonValidate is validate --json (parameters valid; invalid ones are an
// error document whose diagnostics carry each violation's JSON pointer).
type jsonValidate struct {
	Valid         bool   `json:"valid"`
	SoftwareType  string `json:"software_type"`
	Shared        bool   `json:"shared"`
	Serialisation string `json:"serialisation"`
	// Parameters are the complete parameters, defaults applied.
	Parameters           map[string]any `json:"parameters"`
	DefaultsApplied      []string       `json:"defaults_applied"`
	ConvertedFromStrings []string       `json:"converted_from_strings"`
	InvalidDefaults      []string       `json:"invalid_defaults"`
	Warnings             []string       `json:"warnings"`
}

func runSchemaShow(env *cliEnv, args []string) error {
	fs := newFlags("schema show")
	typ := fs.String("type", "", "software type")
	shared := fs.Bool("shared", false, "shared (slave) variant")
	depth := fs.Int("depth", 3, "nesting depth")
	asJSON := fs.Bool("json", false, "JSON output")
	remote := fs.Bool("allow-remote-refs", false, "allow http(s) $ref")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return withCode(exitUsage, errors.New("give one PATH: a software descriptor, a directory holding one, or a JSON Schema (see 'slapnode help schema show')"))
	}
	if *depth < 1 {
		return withCode(exitUsage, fmt.Errorf("--depth must be at least 1, not %d", *depth))
	}
	d, err := loadSoftware(pos[0])
	if err != nil {
		return err
	}
	types := d.List()
	if *typ != "" {
		st, err := d.Lookup(*typ, *shared)
		if err != nil {
			return err
		}
		types = []*schema.SoftwareType{st}
	}
	opts := schema.Options{AllowRemoteRefs: *remote}

	if *asJSON {
		type jsonType struct {
			Type          string             `json:"software_type"`
			Key           string             `json:"key"`
			Shared        bool               `json:"shared"`
			Serialisation string             `json:"serialisation"`
			Request       string             `json:"request,omitempty"`
			Parameters    []schema.Parameter `json:"parameters"`
		}
		out := struct {
			Name          string     `json:"name,omitempty"`
			Path          string     `json:"path,omitempty"`
			SoftwareTypes []jsonType `json:"software_types"`
		}{Name: d.Name, Path: d.Path, SoftwareTypes: []jsonType{}}
		for _, st := range types {
			v, err := d.Validator(st.TypeName(), st.Shared, opts)
			if err != nil {
				return err
			}
			out.SoftwareTypes = append(out.SoftwareTypes, jsonType{st.TypeName(), st.Key, st.Shared, d.SerialisationOf(st), d.Resolve(st.Request), nonNil(v.Parameters(*depth))})
		}
		return env.writeJSON(out)
	}

	w := env.stdout
	head := d.Name
	if head == "" {
		head = pos[0]
	}
	if d.Description != "" && d.Description != d.Name {
		head += " — " + d.Description
	}
	fmt.Fprintln(w, head)
	if d.Path != "" {
		fmt.Fprintf(w, "from %s\n", d.Path)
	}
	for _, st := range types {
		fmt.Fprintln(w)
		line := fmt.Sprintf("software type %q", st.TypeName())
		if st.Shared {
			line += " (shared)"
		}
		if st.Title != "" && st.Title != st.TypeName() {
			line += " — " + st.Title
		}
		if st.Description != "" && st.Description != st.Title {
			line += ": " + st.Description
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "  serialisation: %s\n", d.SerialisationOf(st))
		if st.Request != "" {
			fmt.Fprintf(w, "  parameters schema: %s\n", st.Request)
		}
		if st.Response != "" {
			fmt.Fprintf(w, "  connection schema: %s\n", st.Response)
		}
		v, err := d.Validator(st.TypeName(), st.Shared, opts)
		if err != nil {
			return err
		}
		for _, wmsg := range v.Warnings() {
			fmt.Fprintf(env.stderr, "warning: %s\n", wmsg)
		}
		fmt.Fprintln(w, "  parameters:")
		for _, l := range strings.SplitAfter(v.Summary(*depth), "\n") {
			if l != "" {
				fmt.Fprint(w, "  "+l)
			}
		}
	}
	return nil
}
