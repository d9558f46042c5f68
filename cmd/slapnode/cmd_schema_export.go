package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slapnode/slapnode/internal/atomicfile"
	"github.com/slapnode/slapnode/schema"
)

func init() {
	register(&command{
		name:    "schema export",
		summary: "write an HCL profile's software descriptor (software.hcl.json) for SlapOS's client",
		usage: `Usage: slapnode schema export PROFILE.hcl [--out FILE] [--check] [--json]

Writes the software descriptor of an HCL software profile in SlapOS's
format (software.cfg.json's), next to the profile as PROFILE.hcl.json
unless --out says otherwise. SlapOS's client looks for the descriptor of a
software release at its URL + ".json": with it, 'slapos request
--parameters-file' serialises the parameters as the release expects
(json-in-xml or xml) and validates them against the release's schemas, and
'slapos service info' decodes the connection parameters.

The descriptor names the schemas of each instance block (parameters,
connection, shared_parameters) relative to the profile's directory, where
SlapOS's client resolves them; publish the file with the profile when the
release is served over HTTP.

  --out FILE   where to write (default PROFILE.hcl.json; "-" for stdout)
  --check      write nothing; exit 1 when the file is missing or differs

Examples:
  slapnode schema export examples/helloweb/software.hcl
  slapos request web $PWD/examples/helloweb/software.hcl --parameters-file params.json
  slapnode schema export software.hcl --check      # in CI, before publishing
`,
		run: runSchemaExport,
	})
}

func runSchemaExport(env *cliEnv, args []string) error {
	fs := newFlags("schema export")
	out := fs.String("out", "", "output file")
	check := fs.Bool("check", false, "compare only")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !strings.HasSuffix(pos[0], ".hcl") {
		return withCode(exitUsage, errors.New("give one HCL software profile, e.g. slapnode schema export examples/helloweb/software.hcl (a buildout release has its software.cfg.json already)"))
	}
	d, err := hclDescriptor(pos[0])
	if err != nil {
		return err
	}
	doc, err := slaposDescriptor(d, filepath.Dir(d.Path))
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = d.Path + ".json"
	}
	if *check {
		old, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(old, doc) {
			return withCode(exitFailure, fmt.Errorf("%s is missing or out of date: run 'slapnode schema export %s'", path, pos[0]))
		}
		if *asJSON {
			return env.writeJSON(jsonSchemaExport{Path: path, SoftwareTypes: len(d.Types), Written: false})
		}
		fmt.Fprintf(env.stdout, "%s is up to date\n", path)
		return nil
	}
	if path == "-" {
		_, err := env.stdout.Write(doc)
		return err
	}
	if err := atomicfile.Write(path, doc, 0o644); err != nil {
		return err
	}
	if *asJSON {
		return env.writeJSON(jsonSchemaExport{Path: path, SoftwareTypes: len(d.Types), Written: true})
	}
	fmt.Fprintf(env.stdout, "wrote %s (%d software type(s))\n", path, len(d.Types))
	return nil
}

// jsonSchemaExport is schema export --json.
type jsonSchemaExport struct {
	Path          string `json:"path"`
	SoftwareTypes int    `json:"software_types"`
	// Written is false for --check (the file was up to date).
	Written bool `json:"written"`
}

// slaposDescriptor renders d as a software.cfg.json whose schema paths are
// relative to dir (the profile's directory: SlapOS's client joins them to
// the release URL). Types keep their order.
func slaposDescriptor(d *schema.Descriptor, dir string) ([]byte, error) {
	rel := func(p string) (string, error) {
		if p == "" || strings.Contains(p, "://") {
			return p, nil
		}
		r, err := filepath.Rel(dir, d.Resolve(p))
		if err != nil {
			return "", err
		}
		return filepath.ToSlash(r), nil
	}
	type typeDoc struct {
		Title         string `json:"title,omitempty"`
		Description   string `json:"description,omitempty"`
		SoftwareType  string `json:"software-type,omitempty"`
		Request       string `json:"request,omitempty"`
		Response      string `json:"response,omitempty"`
		Serialisation string `json:"serialisation"`
		Shared        bool   `json:"shared,omitempty"`
		Index         int    `json:"index"`
	}
	var types bytes.Buffer
	types.WriteString("{")
	for i, t := range d.List() {
		req, err := rel(t.Request)
		if err != nil {
			return nil, err
		}
		resp, err := rel(t.Response)
		if err != nil {
			return nil, err
		}
		td := typeDoc{Title: t.Title, Description: t.Description, Request: req, Response: resp,
			Serialisation: d.SerialisationOf(t), Shared: t.Shared, Index: t.Index}
		if t.Key != t.TypeName() {
			td.SoftwareType = t.TypeName()
		}
		k, _ := json.Marshal(t.Key)
		v, err := json.Marshal(td)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			types.WriteString(",")
		}
		types.Write(k)
		types.WriteString(":")
		types.Write(v)
	}
	types.WriteString("}")
	top := struct {
		Name          string          `json:"name"`
		Description   string          `json:"description,omitempty"`
		Serialisation string          `json:"serialisation"`
		SoftwareType  json.RawMessage `json:"software-type"`
	}{Name: d.Name, Description: d.Description, Serialisation: schema.SerialisationJSONInXML, SoftwareType: types.Bytes()}
	if d.Serialisation != "" {
		top.Serialisation = d.Serialisation
	}
	raw, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return nil, err
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}
