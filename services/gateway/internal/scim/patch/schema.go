package patch

import "strings"

// Schema tells Apply what it needs to know of a resource type's attributes.
// Each method receives a lower-case attribute name: a top-level attribute
// ("emails", "meta"), or "attr.sub" for a sub-attribute ("name.givenname",
// "meta.created"). Attributes of the core schemas and of the enterprise
// extension are named without their URN ("manager", "employeenumber");
// attributes of other extensions as "urn:…:attr" (lower-cased).
type Schema interface {
	// IsMultiValued reports whether the attribute holds an array.
	IsMultiValued(attr string) bool
	// IsReadOnly reports whether clients may not write the attribute
	// (id, meta; groups on users). A PATCH that targets it fails with
	// mutability, except that a pathless value may echo the resource's own
	// id (Okta) and may carry read-only attributes, which are ignored.
	IsReadOnly(attr string) bool
	// IsImmutable reports whether the attribute may be set once but never
	// changed afterwards.
	IsImmutable(attr string) bool
}

// StaticSchema is a Schema given by sets of lower-case attribute names.
type StaticSchema struct {
	MultiValued map[string]bool
	ReadOnly    map[string]bool
	Immutable   map[string]bool
}

// IsMultiValued implements Schema.
func (s StaticSchema) IsMultiValued(attr string) bool { return s.MultiValued[strings.ToLower(attr)] }

// IsReadOnly implements Schema.
func (s StaticSchema) IsReadOnly(attr string) bool { return s.ReadOnly[strings.ToLower(attr)] }

// IsImmutable implements Schema.
func (s StaticSchema) IsImmutable(attr string) bool { return s.Immutable[strings.ToLower(attr)] }

// UserSchema describes the RFC 7643 User resource with the enterprise
// extension.
func UserSchema() StaticSchema {
	return StaticSchema{
		MultiValued: set("emails", "phonenumbers", "ims", "photos", "addresses", "groups",
			"entitlements", "roles", "x509certificates"),
		ReadOnly: set("id", "meta", "groups"),
	}
}

// GroupSchema describes the RFC 7643 Group resource.
func GroupSchema() StaticSchema {
	return StaticSchema{
		MultiValued: set("members"),
		ReadOnly:    set("id", "meta"),
	}
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
