package scim

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim/patch"
)

// MaxAttributeMappings bounds a directory's attribute mapping.
const MaxAttributeMappings = 100

// ValidateAttributeMapping checks a directory's attribute mapping
// (custom_attributes key → SCIM path): keys are non-empty and at most 128
// bytes, and every path parses as a SCIM attribute path
// ("department", "name.givenName", "emails[type eq \"work\"].value",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
// "urn:example:params:scim:schemas:extension:acme:2.0:User:costCode").
func ValidateAttributeMapping(m map[string]string) error {
	if len(m) > MaxAttributeMappings {
		return fmt.Errorf("attribute_mapping may have at most %d entries", MaxAttributeMappings)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.TrimSpace(k) == "" || len(k) > 128 {
			return fmt.Errorf("attribute_mapping keys must be 1 to 128 bytes, not %q", k)
		}
		if _, err := patch.ParsePath(m[k]); err != nil {
			return fmt.Errorf("attribute_mapping[%q]: %q is not a SCIM attribute path", k, m[k])
		}
	}
	return nil
}

// applyMapping sets custom[key] to the value of each mapped SCIM path in
// the body as the client sent it, over WorkOS's predefined keys: a mapped
// key whose attribute the body lacks is left out (the mapping overrides
// the default). Paths that do not parse are skipped; they are rejected
// when the mapping is set.
func applyMapping(custom, body map[string]any, mapping map[string]string) {
	for _, key := range slices.Sorted(maps.Keys(mapping)) {
		p, err := patch.ParsePath(mapping[key])
		if err != nil {
			continue
		}
		if v, ok := Resolve(body, p); ok {
			custom[key] = v
		} else {
			delete(custom, key)
		}
	}
}

// Resolve returns the value path p names in a resource body as a client
// sent it: attribute names in any case, the enterprise extension under any
// of its URNs, extension attributes nested under their URN or flattened
// ("urn:…:User:attr"). A value filter picks the first matching element of
// a multi-valued attribute; a sub-attribute of a multi-valued attribute
// without a filter is read from its primary element, else its first. A
// null value is absent.
func Resolve(body map[string]any, p patch.Path) (any, bool) {
	core, ent := splitExtensions(body)
	var v any
	var ok bool
	switch {
	case p.URN == "" || filter.IsCoreURN(p.URN):
		v, ok = core.get(p.Attr)
	case filter.IsEnterpriseURN(p.URN):
		if p.Attr == "" {
			v, ok = map[string]any(ent), len(ent) > 0
		} else {
			v, ok = ent.get(p.Attr)
		}
	default:
		if ext, found := core.get(p.URN); found {
			if m, isMap := ext.(map[string]any); isMap {
				v, ok = object(m).get(p.Attr)
			}
		}
		if !ok {
			v, ok = core.get(p.URN + ":" + p.Attr)
		}
	}
	if !ok || v == nil {
		return nil, false
	}
	if p.Filter == nil && p.Sub == "" {
		return v, true
	}
	elems, isList := v.([]any)
	if !isList {
		elems = []any{v}
	}
	var picked map[string]any
	for _, el := range elems {
		m, isMap := el.(map[string]any)
		if !isMap {
			continue
		}
		if p.Filter != nil {
			if filter.Match(p.Filter, m) {
				picked = m
				break
			}
			continue
		}
		if picked == nil {
			picked = m
		}
		if pv, found := object(m).get("primary"); found {
			if b, err := ParseBool(pv); err == nil && b {
				picked = m
				break
			}
		}
	}
	if picked == nil {
		return nil, false
	}
	if p.Sub == "" {
		return picked, true
	}
	sv, found := object(picked).get(p.Sub)
	if !found || sv == nil {
		return nil, false
	}
	return sv, true
}
