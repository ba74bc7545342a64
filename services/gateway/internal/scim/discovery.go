package scim

import "strings"

// Bulk limits, advertised in /ServiceProviderConfig and enforced by /Bulk.
const (
	BulkMaxOperations  = 1000
	BulkMaxPayloadSize = 1 << 20
)

// ServiceProviderConfig describes what this server supports (RFC 7643 §5).
// base is the directory's SCIM base URL.
func ServiceProviderConfig(base string) map[string]any {
	return map[string]any{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://github.com/dsync-dev/dsync/blob/main/docs/idp-setup.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": true, "maxOperations": BulkMaxOperations, "maxPayloadSize": BulkMaxPayloadSize},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "The directory's SCIM bearer token in an Authorization: Bearer header",
			"specUri":     "https://www.rfc-editor.org/info/rfc6750",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/ServiceProviderConfig"},
	}
}

// ResourceTypes lists the resource types served (RFC 7643 §6).
func ResourceTypes(base string) []any {
	return []any{ResourceType(base, "User"), ResourceType(base, "Group")}
}

// ResourceType returns one resource type by name (case-insensitive), or nil.
func ResourceType(base, name string) map[string]any {
	switch strings.ToLower(name) {
	case "user":
		return map[string]any{
			"schemas": []string{SchemaResType}, "id": "User", "name": "User", "endpoint": "/Users",
			"description": "Directory user", "schema": SchemaUser,
			"schemaExtensions": []any{map[string]any{"schema": SchemaEnterprise, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/User"},
		}
	case "group":
		return map[string]any{
			"schemas": []string{SchemaResType}, "id": "Group", "name": "Group", "endpoint": "/Groups",
			"description": "Directory group", "schema": SchemaGroup, "schemaExtensions": []any{},
			"meta": map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/Group"},
		}
	}
	return nil
}

// Schemas lists the schemas served (RFC 7643 §7): core User, the
// enterprise User extension, and core Group.
func Schemas(base string) []any {
	return []any{Schema(base, SchemaUser), Schema(base, SchemaEnterprise), Schema(base, SchemaGroup)}
}

// attr describes one attribute of a schema. Options are given as a string
// of flags: m multi-valued, r required, c caseExact, R readOnly, I
// immutable, W writeOnly (returned never), A returned always, U unique
// (server), u unique (none otherwise).
func attr(name, typ, flags, desc string, sub ...map[string]any) map[string]any {
	has := func(f byte) bool { return strings.IndexByte(flags, f) >= 0 }
	mut, ret, uniq := "readWrite", "default", "none"
	switch {
	case has('R'):
		mut = "readOnly"
	case has('I'):
		mut = "immutable"
	case has('W'):
		mut, ret = "writeOnly", "never"
	}
	if has('A') {
		ret = "always"
	}
	if has('U') {
		uniq = "server"
	}
	a := map[string]any{
		"name": name, "type": typ, "multiValued": has('m'), "description": desc, "required": has('r'),
		"caseExact": has('c'), "mutability": mut, "returned": ret, "uniqueness": uniq,
	}
	if typ == "reference" {
		a["referenceTypes"] = []string{"external"}
		if name == "$ref" || name == "manager" {
			a["referenceTypes"] = []string{"User", "Group"}
		}
	}
	if len(sub) > 0 {
		l := make([]any, len(sub))
		for i, s := range sub {
			l[i] = s
		}
		a["subAttributes"] = l
	}
	return a
}

func multiValuedSub(kind string) []map[string]any {
	return []map[string]any{
		attr("value", "string", "", "The "+kind+" value"),
		attr("display", "string", "", "A human-readable name"),
		attr("type", "string", "", "A label indicating the "+kind+"'s function, e.g. work or home"),
		attr("primary", "boolean", "", "Whether this is the primary value"),
	}
}

// Schema returns one schema by URN (case-insensitive), or nil.
func Schema(base, urn string) map[string]any {
	var s map[string]any
	switch strings.ToLower(urn) {
	case strings.ToLower(SchemaUser):
		s = map[string]any{"id": SchemaUser, "name": "User", "description": "User Account", "attributes": []any{
			attr("id", "string", "RcAU", "Unique identifier assigned by the service provider"),
			attr("externalId", "string", "c", "Identifier assigned by the provisioning client"),
			attr("userName", "string", "rU", "Unique identifier for the user; unique per directory without regard to case"),
			attr("name", "complex", "", "The components of the user's name",
				attr("formatted", "string", "", "The full name"),
				attr("familyName", "string", "", "The family name"),
				attr("givenName", "string", "", "The given name"),
				attr("middleName", "string", "", "The middle name"),
				attr("honorificPrefix", "string", "", "The honorific prefix"),
				attr("honorificSuffix", "string", "", "The honorific suffix")),
			attr("displayName", "string", "", "The name displayed to end users"),
			attr("nickName", "string", "", "The casual name"),
			attr("profileUrl", "reference", "", "A URL of the user's online profile"),
			attr("title", "string", "", "The user's title, e.g. Vice President"),
			attr("userType", "string", "", "The relationship of the user to the organization"),
			attr("preferredLanguage", "string", "", "The user's preferred language"),
			attr("locale", "string", "", "The user's default location"),
			attr("timezone", "string", "", "The user's time zone"),
			attr("active", "boolean", "", "The user's administrative status"),
			attr("password", "string", "W", "Accepted and never stored or returned"),
			attr("emails", "complex", "m", "Email addresses of the user", multiValuedSub("email")...),
			attr("groups", "complex", "mR", "Groups the user belongs to",
				attr("value", "string", "R", "The group's id"),
				attr("$ref", "reference", "R", "The URI of the group"),
				attr("display", "string", "R", "The group's displayName"),
				attr("type", "string", "R", "direct or indirect")),
		}}
	case strings.ToLower(SchemaEnterprise):
		s = map[string]any{"id": SchemaEnterprise, "name": "EnterpriseUser", "description": "Enterprise User", "attributes": []any{
			attr("employeeNumber", "string", "", "Numeric or alphanumeric identifier assigned by the organization"),
			attr("costCenter", "string", "", "Name of a cost center"),
			attr("organization", "string", "", "Name of an organization"),
			attr("division", "string", "", "Name of a division"),
			attr("department", "string", "", "Name of a department"),
			attr("manager", "complex", "", "The user's manager",
				attr("value", "string", "", "The id of the manager's User resource"),
				attr("$ref", "reference", "", "The URI of the manager's User resource"),
				attr("displayName", "string", "R", "The manager's displayName")),
		}}
	case strings.ToLower(SchemaGroup):
		s = map[string]any{"id": SchemaGroup, "name": "Group", "description": "Group", "attributes": []any{
			attr("id", "string", "RcAU", "Unique identifier assigned by the service provider"),
			attr("externalId", "string", "c", "Identifier assigned by the provisioning client"),
			attr("displayName", "string", "r", "A human-readable name for the group"),
			attr("members", "complex", "m", "The members of the group",
				attr("value", "string", "I", "The id of the member's User resource"),
				attr("$ref", "reference", "I", "The URI of the member's User resource"),
				attr("display", "string", "", "A human-readable name of the member"),
				attr("type", "string", "I", "The type of member: User")),
		}}
	default:
		return nil
	}
	s["schemas"] = []string{SchemaSchema}
	s["meta"] = map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + s["id"].(string)}
	return s
}
