package slap

import (
	"fmt"
	"sort"
)

// Requested and reported states.
const (
	StateStarted   = "started"
	StateStopped   = "stopped"
	StateDestroyed = "destroyed"
	StateAvailable = "available" // software release: to be installed
)

// Reserved keys of a partition's _parameter_dict: what the master adds
// beside the instance parameters.
var reservedParameters = map[string]bool{
	"ip_list": true, "full_address_list": true, "full_ip_list": true,
	"instance_title": true, "root_instance_title": true,
	"slap_computer_id": true, "slap_computer_partition_id": true,
	"slap_software_release_url": true, "slap_software_type": true,
	"slave_instance_list": true, "timestamp": true,
}

// Computer is what getFullComputerInformation returns: a node's software
// releases to install or remove, and all of its partitions.
type Computer struct {
	ID               string
	Partitions       []*ComputerPartition
	SoftwareReleases []*SoftwareRelease
}

// SoftwareRelease is a software release supplied to a computer (with its
// RequestedState) or the software of a partition (RequestedState empty: the
// master does not send it there).
type SoftwareRelease struct {
	URL            string
	ComputerID     string
	RequestedState string // available or destroyed; "" when absent
}

// ComputerPartition is one partition as the master describes it to its
// node. A free partition has RequestedState destroyed, no software release
// and nil ConnectionDict and ParameterDict (the keys are absent on the wire).
type ComputerPartition struct {
	ComputerID       string
	PartitionID      string
	InstanceGUID     string
	NeedModification bool
	RequestedState   string
	RequestDict      map[string]any // nil: <none/> (always, from slapproxy)
	SoftwareRelease  *SoftwareRelease
	ConnectionDict   map[string]any // nil: key absent
	ParameterDict    map[string]any // instance parameters plus the reserved keys; nil: key absent
	Extra            map[string]any // other attributes a master sends (_filter_dict, _access_status…), kept as is
}

// SoftwareInstance is the answer to requestComputerPartition.
type SoftwareInstance struct {
	// Shared answers (slave instances) carry no _instance_guid,
	// _requested_state nor connection_xml.
	Shared         bool
	ConnectionDict map[string]any
	InstanceGUID   string
	ParameterDict  map[string]any
	RequestedState string
	ConnectionXML  *string // nil: <none/>, no connection parameters yet
	IPList         [][2]string
	ComputerID     string
	PartitionID    string
	ServerURL      string
	SoftwareURL    string
	SoftwareType   string
	Extra          map[string]any
}

// SharedInstance is one entry of a host partition's slave_instance_list.
type SharedInstance struct {
	Reference    string         // slave_reference: requested_by + "_" + title
	Title        string         // slave_title
	SoftwareType string         // slap_software_type
	Parameters   map[string]any // the rest
}

// Object returns the wire form of c.
func (c *Computer) Object() *Object {
	parts := make([]any, len(c.Partitions))
	for i, p := range c.Partitions {
		parts[i] = p.Object()
	}
	srs := make([]any, len(c.SoftwareReleases))
	for i, s := range c.SoftwareReleases {
		srs[i] = s.Object()
	}
	return &Object{Class: "Computer", Args: Tuple{c.ID}, Dict: map[string]any{
		"_computer_id": c.ID, "_computer_partition_list": parts, "_software_release_list": srs,
	}}
}

// Object returns the wire form of s.
func (s *SoftwareRelease) Object() *Object {
	d := map[string]any{"_computer_guid": s.ComputerID, "_software_instance_list": []any{}, "_software_release": s.URL}
	if s.RequestedState != "" {
		d["_requested_state"] = s.RequestedState
	}
	return &Object{Class: "SoftwareRelease", Args: Tuple{s.URL, s.ComputerID}, Dict: d}
}

// Object returns the wire form of p.
func (p *ComputerPartition) Object() *Object {
	d := map[string]any{}
	for k, v := range p.Extra {
		d[k] = v
	}
	need := 0
	if p.NeedModification {
		need = 1
	}
	var req any
	if p.RequestDict != nil {
		req = p.RequestDict
	}
	var sr any
	if p.SoftwareRelease != nil {
		sr = p.SoftwareRelease.Object()
	}
	d["_computer_id"] = p.ComputerID
	d["_partition_id"] = p.PartitionID
	d["_instance_guid"] = p.InstanceGUID
	d["_need_modification"] = need
	d["_requested_state"] = p.RequestedState
	d["_request_dict"] = req
	d["_software_release_document"] = sr
	if p.ConnectionDict != nil {
		d["_connection_dict"] = p.ConnectionDict
	}
	if p.ParameterDict != nil {
		d["_parameter_dict"] = p.ParameterDict
	}
	return &Object{Class: "ComputerPartition", Args: Tuple{p.ComputerID, p.PartitionID, req}, Dict: d}
}

// Object returns the wire form of s.
func (s *SoftwareInstance) Object() *Object {
	d := map[string]any{}
	for k, v := range s.Extra {
		d[k] = v
	}
	ips := make([]any, len(s.IPList))
	for i, ip := range s.IPList {
		ips[i] = Tuple{ip[0], ip[1]}
	}
	conn := s.ConnectionDict
	if conn == nil {
		conn = map[string]any{}
	}
	params := s.ParameterDict
	if params == nil {
		params = map[string]any{}
	}
	d["_connection_dict"] = conn
	d["_parameter_dict"] = params
	d["ip_list"] = ips
	d["slap_computer_id"] = s.ComputerID
	d["slap_computer_partition_id"] = s.PartitionID
	d["slap_server_url"] = s.ServerURL
	d["slap_software_release_url"] = s.SoftwareURL
	d["slap_software_type"] = s.SoftwareType
	if !s.Shared {
		d["_instance_guid"] = s.InstanceGUID
		d["_requested_state"] = s.RequestedState
		if s.ConnectionXML != nil {
			d["connection_xml"] = *s.ConnectionXML
		} else {
			d["connection_xml"] = nil
		}
	}
	return &Object{Class: "SoftwareInstance", Args: Tuple{}, Dict: d}
}

// Timestamp is the partition's timestamp parameter: it changes whenever
// the master wants the node to process the partition again.
func (p *ComputerPartition) Timestamp() string { return p.param("timestamp") }

// SoftwareType is the partition's software type (slap_software_type).
func (p *ComputerPartition) SoftwareType() string { return p.param("slap_software_type") }

// InstanceTitle is the title of the instance the partition hosts.
func (p *ComputerPartition) InstanceTitle() string { return p.param("instance_title") }

// RootInstanceTitle is the title of the root of the instance's tree.
func (p *ComputerPartition) RootInstanceTitle() string { return p.param("root_instance_title") }

func (p *ComputerPartition) param(k string) string {
	s, _ := p.ParameterDict[k].(string)
	return s
}

// InstanceParameters are the parameters the requester gave: the
// _parameter_dict without the keys the master adds.
func (p *ComputerPartition) InstanceParameters() map[string]any {
	out := map[string]any{}
	for k, v := range p.ParameterDict {
		if !reservedParameters[k] {
			out[k] = v
		}
	}
	return out
}

// IPList is the partition's (interface, address) list.
func (p *ComputerPartition) IPList() [][2]string { return ipList(p.ParameterDict["ip_list"]) }

// SharedInstances are the shared (slave) instances the partition hosts.
func (p *ComputerPartition) SharedInstances() []SharedInstance {
	l, _ := p.ParameterDict["slave_instance_list"].([]any)
	out := make([]SharedInstance, 0, len(l))
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		s := SharedInstance{Parameters: map[string]any{}}
		for k, v := range m {
			str, _ := v.(string)
			switch k {
			case "slave_reference":
				s.Reference = str
			case "slave_title":
				s.Title = str
			case "slap_software_type":
				s.SoftwareType = str
			default:
				s.Parameters[k] = v
			}
		}
		out = append(out, s)
	}
	return out
}

// Map is the slave_instance_list entry of s.
func (s SharedInstance) Map() map[string]any {
	m := map[string]any{}
	for k, v := range s.Parameters {
		m[k] = v
	}
	m["slave_reference"] = s.Reference
	m["slave_title"] = s.Title
	m["slap_software_type"] = s.SoftwareType
	return m
}

func ipList(v any) [][2]string {
	l, _ := v.([]any)
	out := make([][2]string, 0, len(l))
	for _, e := range l {
		var t []any
		switch x := e.(type) {
		case Tuple:
			t = x
		case []any:
			t = x
		}
		if len(t) >= 2 {
			a, _ := t[0].(string)
			b, _ := t[1].(string)
			out = append(out, [2]string{a, b})
		}
	}
	return out
}

// ParseComputer reads a getFullComputerInformation answer.
func ParseComputer(v any) (*Computer, error) {
	o, err := asObject(v, "Computer")
	if err != nil {
		return nil, err
	}
	c := &Computer{ID: str(o.Dict["_computer_id"])}
	if c.ID == "" && len(o.Args) > 0 {
		c.ID = str(o.Args[0])
	}
	parts, _ := o.Dict["_computer_partition_list"].([]any)
	for i, e := range parts {
		p, err := ParseComputerPartition(e)
		if err != nil {
			return nil, fmt.Errorf("computer %s, partition #%d: %w", c.ID, i, err)
		}
		c.Partitions = append(c.Partitions, p)
	}
	srs, _ := o.Dict["_software_release_list"].([]any)
	for i, e := range srs {
		s, err := ParseSoftwareRelease(e)
		if err != nil {
			return nil, fmt.Errorf("computer %s, software release #%d: %w", c.ID, i, err)
		}
		c.SoftwareReleases = append(c.SoftwareReleases, s)
	}
	return c, nil
}

// ParseSoftwareRelease reads a SoftwareRelease object.
func ParseSoftwareRelease(v any) (*SoftwareRelease, error) {
	o, err := asObject(v, "SoftwareRelease")
	if err != nil {
		return nil, err
	}
	s := &SoftwareRelease{URL: str(o.Dict["_software_release"]), ComputerID: str(o.Dict["_computer_guid"]), RequestedState: str(o.Dict["_requested_state"])}
	if s.URL == "" && len(o.Args) > 0 {
		s.URL = str(o.Args[0])
	}
	if s.ComputerID == "" && len(o.Args) > 1 {
		s.ComputerID = str(o.Args[1])
	}
	return s, nil
}

// ParseComputerPartition reads a ComputerPartition object.
func ParseComputerPartition(v any) (*ComputerPartition, error) {
	o, err := asObject(v, "ComputerPartition")
	if err != nil {
		return nil, err
	}
	p := &ComputerPartition{Extra: map[string]any{}}
	for k, v := range o.Dict {
		switch k {
		case "_computer_id":
			p.ComputerID = str(v)
		case "_partition_id":
			p.PartitionID = str(v)
		case "_instance_guid":
			p.InstanceGUID = str(v)
		case "_need_modification":
			switch n := v.(type) {
			case int:
				p.NeedModification = n != 0
			case bool:
				p.NeedModification = n
			}
		case "_requested_state":
			p.RequestedState = str(v)
		case "_request_dict":
			p.RequestDict, _ = v.(map[string]any)
		case "_software_release_document":
			if v != nil {
				if p.SoftwareRelease, err = ParseSoftwareRelease(v); err != nil {
					return nil, err
				}
			}
		case "_connection_dict":
			p.ConnectionDict = asDict(v)
		case "_parameter_dict":
			p.ParameterDict = asDict(v)
		default:
			p.Extra[k] = v
		}
	}
	if p.ComputerID == "" && len(o.Args) > 0 {
		p.ComputerID = str(o.Args[0])
	}
	if p.PartitionID == "" && len(o.Args) > 1 {
		p.PartitionID = str(o.Args[1])
	}
	if p.PartitionID == "" {
		return nil, fmt.Errorf("ComputerPartition without a partition id")
	}
	return p, nil
}

// ParseSoftwareInstance reads a requestComputerPartition answer.
func ParseSoftwareInstance(v any) (*SoftwareInstance, error) {
	o, err := asObject(v, "SoftwareInstance")
	if err != nil {
		return nil, err
	}
	s := &SoftwareInstance{Shared: true, Extra: map[string]any{}}
	for k, v := range o.Dict {
		switch k {
		case "_connection_dict":
			s.ConnectionDict = asDict(v)
		case "_instance_guid":
			s.InstanceGUID = str(v)
			s.Shared = false
		case "_parameter_dict":
			s.ParameterDict = asDict(v)
		case "_requested_state":
			s.RequestedState = str(v)
		case "connection_xml":
			if x, ok := v.(string); ok {
				s.ConnectionXML = &x
			}
		case "ip_list":
			s.IPList = ipList(v)
		case "slap_computer_id":
			s.ComputerID = str(v)
		case "slap_computer_partition_id":
			s.PartitionID = str(v)
		case "slap_server_url":
			s.ServerURL = str(v)
		case "slap_software_release_url":
			s.SoftwareURL = str(v)
		case "slap_software_type":
			s.SoftwareType = str(v)
		default:
			s.Extra[k] = v
		}
	}
	if s.ConnectionDict == nil {
		s.ConnectionDict = map[string]any{}
	}
	// Like the client library, fall back on connection_xml when the
	// master sent no connection dictionary.
	if len(s.ConnectionDict) == 0 && s.ConnectionXML != nil {
		if d, err := XMLToDict(*s.ConnectionXML); err == nil {
			s.ConnectionDict = d
		}
	}
	return s, nil
}

// Parameters are the instance parameters without the timestamp the master
// adds to non-shared answers.
func (s *SoftwareInstance) Parameters() map[string]any {
	out := map[string]any{}
	for k, v := range s.ParameterDict {
		if k != "timestamp" {
			out[k] = v
		}
	}
	return out
}

func asObject(v any, class string) (*Object, error) {
	o, ok := v.(*Object)
	if !ok {
		return nil, fmt.Errorf("expected a %s object, got %s", class, describe(v))
	}
	if o.Class != class {
		return nil, fmt.Errorf("expected a %s object, got a %s", class, o.Class)
	}
	return o, nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case string:
		return "a string"
	case map[string]any:
		return "a dictionary"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

func asDict(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// StringDict converts a decoded dictionary to strings, as a SlapOS
// consumer sees it (nil stays ""; other values their Python str()).
func StringDict(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil {
			out[k] = ""
			continue
		}
		out[k] = PyStr(v)
	}
	return out
}

// SortedKeys returns m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
