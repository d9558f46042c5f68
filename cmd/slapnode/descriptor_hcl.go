package main

import (
	"path/filepath"
	"strings"

	"github.com/slapnode/slapnode/partition"
	"github.com/slapnode/slapnode/schema"
)

// An HCL software profile describes its software types in `instance`
// blocks: validate and schema show read them as a descriptor.
func init() {
	descriptorLoaders = append([]descriptorLoader{{
		name:  "slapnode software profile (.hcl)",
		match: func(p string) bool { return strings.HasSuffix(p, ".hcl") },
		load:  hclDescriptor,
	}}, descriptorLoaders...)
}

func hclDescriptor(path string) (*schema.Descriptor, error) {
	e := &partition.Engine{Root: defaultRoot()}
	sw, err := e.LoadSoftware(path)
	if err != nil {
		return nil, err
	}
	d := schema.NewDescriptor(sw.Info.Name, filepath.Dir(sw.URL))
	d.Description = sw.Info.Description
	d.Path = sw.URL
	for _, it := range sw.Types {
		st := &schema.SoftwareType{
			Name: it.Name, Title: it.Title, Description: it.Description,
			Request: it.Parameters, Response: it.Connection,
			Serialisation: it.Serialisation, Shared: it.Shared, Index: it.Index,
		}
		if err := d.AddType(st); err != nil {
			return nil, err
		}
		if it.SharedParameters != "" {
			sh := *st
			sh.Key = it.Name + "-shared"
			sh.Shared, sh.Request, sh.Response = true, it.SharedParameters, ""
			if err := d.AddType(&sh); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}
