package scim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Schema URNs.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaListResp   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaSearchReq  = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	SchemaBulkReq    = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResp   = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	SchemaSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// enterpriseKeys are the (lower-cased) keys under which clients send the
// enterprise extension: the RFC's URN and the SCIM 1.x / OneLogin variants.
var enterpriseKeys = []string{
	strings.ToLower(SchemaEnterprise),
	"urn:scim:schemas:extension:enterprise:2.0",
	"urn:scim:schemas:extension:enterprise:1.0",
}

// corePrefixes are URN prefixes a client may put in front of a core
// attribute name ("urn:…:core:2.0:User:userName").
var corePrefixes = []string{
	strings.ToLower(SchemaUser) + ":",
	strings.ToLower(SchemaGroup) + ":",
	"urn:scim:schemas:core:2.0:",
	"urn:scim:schemas:core:1.0:",
}

// object is a JSON object whose attribute names are matched without regard
// to case, as RFC 7643 §2.1 requires.
type object map[string]any

// get returns the value of name, matched case-insensitively. When several
// keys match, the exact spelling wins, else the smallest key, so the result
// never depends on map order.
func (o object) get(name string) (any, bool) {
	if v, ok := o[name]; ok {
		return v, true
	}
	best, found := "", false
	for k := range o {
		if strings.EqualFold(k, name) && (!found || k < best) {
			best, found = k, true
		}
	}
	if !found {
		return nil, false
	}
	return o[best], true
}

// splitExtensions separates a resource body into core attributes and the
// enterprise extension's attributes, folding URN-prefixed keys
// ("urn:…:enterprise:2.0:User:department") into the object they name. Keys
// are visited in sorted order so that collisions resolve deterministically.
func splitExtensions(body map[string]any) (core, enterprise object) {
	core, enterprise = object{}, object{}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := body[k]
		lk := strings.ToLower(k)
		switch {
		case slices.Contains(enterpriseKeys, lk):
			if m, ok := v.(map[string]any); ok {
				for ek, ev := range m {
					enterprise[ek] = ev
				}
			}
		case hasAnyPrefix(lk, enterpriseKeys, ":"):
			enterprise[k[strings.LastIndexByte(k, ':')+1:]] = v
		case hasAnyPrefix(lk, corePrefixes, ""):
			core[k[strings.LastIndexByte(k, ':')+1:]] = v
		default:
			core[k] = v
		}
	}
	return core, enterprise
}

func hasAnyPrefix(s string, prefixes []string, sep string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p+sep) && len(s) > len(p+sep) {
			return true
		}
	}
	return false
}

// stringAttr returns a string attribute. Numbers and booleans are accepted
// and formatted (IdPs send employeeNumber as a number); null is absent.
func (o object) stringAttr(name string) (string, error) {
	v, ok := o.get(name)
	if !ok {
		return "", nil
	}
	s, err := scalarString(v)
	if err != nil {
		return "", invalidValue("%s must be a string", name)
	}
	return s, nil
}

func scalarString(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case bool:
		return strconv.FormatBool(t), nil
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), nil
	case json.Number:
		return t.String(), nil
	default:
		return "", fmt.Errorf("not a scalar: %T", v)
	}
}

// ParseBool accepts a JSON boolean or the strings "true"/"false" in any
// case, as Entra sends ("True", "False").
func ParseBool(v any) (bool, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("not a boolean: %v", v)
}

// boolAttr returns a boolean attribute, or def when absent or null.
func (o object) boolAttr(name string, def bool) (bool, error) {
	v, ok := o.get(name)
	if !ok || v == nil {
		return def, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return false, invalidValue("%s must be a boolean", name)
	}
	return b, nil
}

// objectAttr returns a complex attribute, or nil when absent or null.
func (o object) objectAttr(name string) (object, error) {
	v, ok := o.get(name)
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalidValue("%s must be an object", name)
	}
	return object(m), nil
}

// listAttr returns a multi-valued attribute; a single value is taken as a
// list of one.
func (o object) listAttr(name string) []any {
	v, ok := o.get(name)
	if !ok || v == nil {
		return nil
	}
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}
