package slap

import "fmt"

// ComputerConfiguration is what `slapos node format` posts to
// loadComputerConfigurationFromXML to register a node and its partitions.
type ComputerConfiguration struct {
	Reference    string // the computer id
	Address      string // the node's own address
	Netmask      string
	InstanceRoot string
	SoftwareRoot string
	SoftwareUser string
	Partitions   []PartitionConfiguration
}

// PartitionConfiguration is one partition of a ComputerConfiguration.
type PartitionConfiguration struct {
	Reference string // slappartN
	Path      string
	UserName  string
	TapName   string // the interface named in ip_list; slapproxy uses the reference when empty
	Addresses []Address
	IPv6Range *Address
}

// Address is an address with its netmask.
type Address struct {
	Addr    string
	Netmask string
}

// Map is the dictionary slapformat marshals, with every key it sends (the
// ones this type does not model are None or empty, as on a machine
// formatted without those features).
func (c *ComputerConfiguration) Map() map[string]any {
	parts := make([]any, len(c.Partitions))
	for i, p := range c.Partitions {
		addrs := make([]any, len(p.Addresses))
		for j, a := range p.Addresses {
			addrs[j] = map[string]any{"addr": a.Addr, "netmask": a.Netmask}
		}
		var v6 any
		if p.IPv6Range != nil {
			v6 = map[string]any{"addr": p.IPv6Range.Addr, "netmask": p.IPv6Range.Netmask}
		}
		tap := map[string]any{"name": p.TapName}
		for _, k := range []string{"ipv4_addr", "ipv4_gateway", "ipv4_netmask", "ipv4_network", "ipv6_addr", "ipv6_gateway", "ipv6_netmask", "ipv6_network"} {
			tap[k] = ""
		}
		parts[i] = map[string]any{
			"address_list": addrs, "external_storage_list": []any{}, "ipv6_range": v6,
			"path": p.Path, "reference": p.Reference, "tap": tap, "tun": nil,
			"user": map[string]any{"additional_group_list": nil, "name": p.UserName, "shell": "/bin/sh"},
		}
	}
	return map[string]any{
		"address": c.Address, "netmask": c.Netmask, "reference": c.Reference,
		"instance_root": c.InstanceRoot, "software_root": c.SoftwareRoot, "software_user": c.SoftwareUser,
		"instance_storage_home": nil, "interface": nil, "ipv6_interface": nil, "os_type": nil,
		"partition_has_ipv6_range": nil, "public_ipv4_address": nil, "python_version": nil,
		"slapos_version": nil, "tap_gateway_interface": nil, "tap_ipv6": nil,
		"partition_list": parts,
	}
}

// ParseComputerConfiguration reads the dictionary a loadComputerConfigurationFromXML
// call carries. Like slapproxy it needs only the computer's reference and,
// per partition, its reference, addresses and tap name; the rest is kept
// if present.
func ParseComputerConfiguration(v any) (*ComputerConfiguration, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("computer configuration: expected a dictionary, got %s", describe(v))
	}
	c := &ComputerConfiguration{
		Reference: str(m["reference"]), Address: str(m["address"]), Netmask: str(m["netmask"]),
		InstanceRoot: str(m["instance_root"]), SoftwareRoot: str(m["software_root"]), SoftwareUser: str(m["software_user"]),
	}
	if c.Reference == "" {
		return nil, fmt.Errorf("computer configuration: no \"reference\" (the computer id)")
	}
	list, ok := m["partition_list"].([]any)
	if !ok && m["partition_list"] != nil {
		return nil, fmt.Errorf("computer configuration %s: \"partition_list\" is %s, want a list", c.Reference, describe(m["partition_list"]))
	}
	seen := map[string]bool{}
	for i, e := range list {
		pm, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("computer configuration %s: partition #%d is %s, want a dictionary", c.Reference, i, describe(e))
		}
		p := PartitionConfiguration{Reference: str(pm["reference"]), Path: str(pm["path"])}
		if p.Reference == "" {
			return nil, fmt.Errorf("computer configuration %s: partition #%d has no \"reference\"", c.Reference, i)
		}
		if seen[p.Reference] {
			return nil, fmt.Errorf("computer configuration %s: partition %s listed twice", c.Reference, p.Reference)
		}
		seen[p.Reference] = true
		if u, ok := pm["user"].(map[string]any); ok {
			p.UserName = str(u["name"])
		}
		if t, ok := pm["tap"].(map[string]any); ok {
			p.TapName = str(t["name"])
		}
		addrs, _ := pm["address_list"].([]any)
		for _, a := range addrs {
			am, ok := a.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("computer configuration %s: partition %s: an address is %s, want a dictionary", c.Reference, p.Reference, describe(a))
			}
			p.Addresses = append(p.Addresses, Address{Addr: str(am["addr"]), Netmask: str(am["netmask"])})
		}
		if r, ok := pm["ipv6_range"].(map[string]any); ok {
			p.IPv6Range = &Address{Addr: str(r["addr"]), Netmask: str(r["netmask"])}
		}
		c.Partitions = append(c.Partitions, p)
	}
	return c, nil
}
