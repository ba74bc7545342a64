package scim

import (
	"strings"

	"github.com/dsync-dev/dsync/services/gateway/internal/scim/patch"
)

// attrSchema tells the PATCH engine which attributes of a resource type are
// multi-valued, read-only or immutable. Attribute names arrive in any case,
// optionally URN-qualified or dotted (name.givenName); they are reduced to
// a lower-case path without the schema URN before lookup.
type attrSchema struct {
	multi    map[string]bool
	readOnly map[string]bool
}

var _ patch.Schema = attrSchema{}

// userPatchSchema and groupPatchSchema describe the attributes of RFC 7643
// §4.1 and §4.2 (and the enterprise extension, which has no multi-valued
// attribute) as the PATCH engine needs them.
var (
	userPatchSchema = attrSchema{
		multi: setOf("emails", "phonenumbers", "ims", "photos", "addresses", "groups",
			"entitlements", "roles", "x509certificates"),
		readOnly: setOf("id", "meta", "groups", "meta.created", "meta.lastmodified", "meta.location",
			"meta.version", "meta.resourcetype", "manager.displayname"),
	}
	groupPatchSchema = attrSchema{
		multi:    setOf("members"),
		readOnly: setOf("id", "meta", "meta.created", "meta.lastmodified", "meta.location", "meta.version", "meta.resourcetype"),
	}
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// schemaURNs are the URN prefixes stripped from an attribute path before
// lookup, lower-cased.
var schemaURNs = []string{
	strings.ToLower(SchemaUser), strings.ToLower(SchemaGroup), strings.ToLower(SchemaEnterprise),
	"urn:scim:schemas:core:2.0", "urn:scim:schemas:core:1.0",
	"urn:scim:schemas:extension:enterprise:2.0", "urn:scim:schemas:extension:enterprise:1.0",
}

// attrKey reduces an attribute path to its lower-case, URN-less form,
// without any value filter ("emails[type eq work].value" → "emails.value").
func attrKey(attr string) string {
	a := strings.ToLower(strings.TrimSpace(attr))
	for _, u := range schemaURNs {
		if rest, ok := strings.CutPrefix(a, u+":"); ok {
			a = rest
			break
		}
	}
	if i := strings.IndexByte(a, '['); i >= 0 {
		if j := strings.LastIndexByte(a, ']'); j > i {
			a = a[:i] + a[j+1:]
		}
	}
	return a
}

// IsMultiValued implements patch.Schema.
func (s attrSchema) IsMultiValued(attr string) bool { return s.multi[attrKey(attr)] }

// IsReadOnly implements patch.Schema.
func (s attrSchema) IsReadOnly(attr string) bool { return s.readOnly[attrKey(attr)] }

// IsImmutable implements patch.Schema: id may never change; the engine
// reports a change of it as scimType mutability.
func (s attrSchema) IsImmutable(attr string) bool { return attrKey(attr) == "id" }
