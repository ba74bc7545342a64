package filter

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Match reports whether resource satisfies e, following RFC 7644 §3.4.2.2:
//
//   - Attribute names are matched case-insensitively. An unqualified name
//     that the resource does not hold at its top level is looked up in its
//     extension objects (keys starting with "urn:"), so Entra's
//     `manager eq "id"` finds the enterprise extension's manager.
//   - A URN-qualified name is looked up in the object under that URN; a core
//     schema URN (urn:ietf:params:scim:schemas:core:…) names the top level.
//   - Strings compare case-insensitively except for caseExact attributes
//     (see CaseExact). Strings that both parse as RFC 3339 date-times compare
//     as instants. Numbers compare numerically; a string attribute compared
//     with a number compares with the number's literal text for eq, ne, co,
//     sw and ew and numerically for gt, ge, lt and le.
//   - A complex attribute compared without a sub-attribute is compared by
//     its "value" sub-attribute: `members eq "id"` means members.value,
//     `manager eq "id"` means manager.value.
//   - A multi-valued attribute matches when any of its values matches; so
//     does a value path.
//   - pr is true when the attribute has a value that is not null, "" , [] or {}.
//   - A missing or null attribute makes every comparison false except ne,
//     which is true (`title ne "x"` selects users without a title), and
//     `eq null`, which is true (`ne null` is its negation).
//   - gt, ge, lt and le on booleans or complex values are false.
func Match(e Expr, resource map[string]any) bool {
	return match(e, resource, "")
}

func match(e Expr, obj map[string]any, parent string) bool {
	switch t := e.(type) {
	case *Logical:
		if t.Op == "or" {
			return match(t.Left, obj, parent) || match(t.Right, obj, parent)
		}
		return match(t.Left, obj, parent) && match(t.Right, obj, parent)
	case *Not:
		return !match(t.Expr, obj, parent)
	case *Compare:
		return matchCompare(t, obj, parent)
	case *ValuePath:
		v, ok := lookupAttr(obj, t.Attr, parent)
		if !ok {
			return false
		}
		name := pathKey(parent, AttrPath{Attr: t.Attr.Attr})
		for _, el := range elements(v) {
			if m, ok := el.(map[string]any); ok && match(t.Filter, m, name) {
				return true
			}
		}
		return false
	}
	return false
}

// getFold returns obj's value for name, matched case-insensitively. The
// exact spelling wins, else the smallest matching key, so the result never
// depends on map iteration order.
func getFold(obj map[string]any, name string) (any, bool) {
	if v, ok := obj[name]; ok {
		return v, true
	}
	best, found := "", false
	for k := range obj {
		if strings.EqualFold(k, name) && (!found || k < best) {
			best, found = k, true
		}
	}
	if !found {
		return nil, false
	}
	return obj[best], true
}

// IsCoreURN reports whether urn names a core schema
// (urn:ietf:params:scim:schemas:core:2.0:User, SCIM 1.x core), whose
// attributes live at a resource's top level.
func IsCoreURN(urn string) bool {
	u := strings.ToLower(urn)
	return strings.HasPrefix(u, "urn:ietf:params:scim:schemas:core:") || strings.HasPrefix(u, "urn:scim:schemas:core:")
}

// IsEnterpriseURN reports whether urn names the enterprise user extension,
// in its RFC 7643 spelling or the SCIM 1.x variants OneLogin sends.
func IsEnterpriseURN(urn string) bool {
	switch strings.ToLower(urn) {
	case "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
		"urn:scim:schemas:extension:enterprise:2.0",
		"urn:scim:schemas:extension:enterprise:1.0":
		return true
	}
	return false
}

// lookupAttr finds the value of p's attribute (ignoring p.Sub) in obj.
func lookupAttr(obj map[string]any, p AttrPath, parent string) (any, bool) {
	if p.URN != "" {
		if ext, ok := getFold(obj, p.URN); ok {
			if m, ok := ext.(map[string]any); ok {
				return getFold(m, p.Attr)
			}
		}
		if v, ok := getFold(obj, p.URN+":"+p.Attr); ok { // flattened "urn:…:attr" key
			return v, true
		}
		if !IsCoreURN(p.URN) {
			return nil, false
		}
	}
	if v, ok := getFold(obj, p.Attr); ok {
		return v, true
	}
	if parent != "" || p.URN != "" {
		return nil, false
	}
	// Unqualified names of extension attributes (Entra's manager).
	keys := make([]string, 0, 2)
	for k, v := range obj {
		if _, ok := v.(map[string]any); ok && len(k) > 4 && strings.EqualFold(k[:4], "urn:") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v, ok := getFold(obj[k].(map[string]any), p.Attr); ok {
			return v, true
		}
	}
	return nil, false
}

// elements returns the values of a possibly multi-valued attribute.
func elements(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// values returns the leaf values p selects in obj, flattening multi-valued
// attributes and sub-attributes of multi-valued complex attributes.
func values(obj map[string]any, p AttrPath, parent string) []any {
	v, ok := lookupAttr(obj, p, parent)
	if !ok {
		return nil
	}
	if p.Sub == "" {
		return elements(v)
	}
	var out []any
	for _, el := range elements(v) {
		if m, ok := el.(map[string]any); ok {
			if sv, ok := getFold(m, p.Sub); ok {
				out = append(out, elements(sv)...)
			}
		}
	}
	return out
}

// pathKey is the lower-case dotted name of p under parent, without URN.
func pathKey(parent string, p AttrPath) string {
	k := strings.ToLower(p.Attr)
	if p.Sub != "" {
		k += "." + strings.ToLower(p.Sub)
	}
	if parent != "" {
		k = parent + "." + k
	}
	return k
}

// CaseExact reports whether string values of the attribute at path (a
// lower-case dotted path such as "externalid" or "emails.value", as in
// Term.Path) compare case-sensitively. Per RFC 7643 that is id, externalId,
// meta.location and every $ref; userName, displayName, emails.value and the
// rest compare case-insensitively.
func CaseExact(path string) bool {
	path = strings.ToLower(path)
	switch path {
	case "id", "externalid", "meta.location":
		return true
	}
	return path == "$ref" || strings.HasSuffix(path, ".$ref")
}

func present(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case []any:
		for _, el := range t {
			if present(el) {
				return true
			}
		}
		return false
	case map[string]any:
		return len(t) > 0
	}
	return true
}

func matchCompare(c *Compare, obj map[string]any, parent string) bool {
	vals := values(obj, c.Path, parent)
	key := pathKey(parent, c.Path)
	if c.Op == "pr" {
		return slices.ContainsFunc(vals, present)
	}
	type leaf struct {
		v     any
		exact bool
	}
	var leaves []leaf
	for _, v := range vals {
		k := key
		if m, ok := v.(map[string]any); ok && c.Path.Sub == "" {
			// members eq "id" compares members.value.
			sv, ok := getFold(m, "value")
			if !ok {
				continue
			}
			v, k = sv, key+".value"
		}
		if present(v) {
			leaves = append(leaves, leaf{v, CaseExact(k)})
		}
	}
	if c.Value == nil {
		switch c.Op {
		case "eq":
			return len(leaves) == 0
		case "ne":
			return len(leaves) > 0
		}
		return false
	}
	if len(leaves) == 0 {
		return c.Op == "ne"
	}
	for _, l := range leaves {
		if compare(c, l.v, l.exact) {
			return true
		}
	}
	return false
}

// toFloat converts the numeric types a decoded or hand-built resource may
// hold.
func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case float32:
		return float64(t), true
	case int:
		return float64(t), true
	case int32:
		return float64(t), true
	case int64:
		return float64(t), true
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// parseTime parses an RFC 3339 date-time; the length check keeps ordinary
// strings off the slow path.
func parseTime(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || (s[10] != 'T' && s[10] != 't') {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// ordered applies an ordering or equality operator to a comparison result.
func ordered(op string, cmp int) bool {
	switch op {
	case "eq":
		return cmp == 0
	case "ne":
		return cmp != 0
	case "gt":
		return cmp > 0
	case "ge":
		return cmp >= 0
	case "lt":
		return cmp < 0
	case "le":
		return cmp <= 0
	}
	return false
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return 2 // NaN: unordered, equal to nothing
}

// compare applies c's operator to one attribute value v.
func compare(c *Compare, v any, exact bool) bool {
	switch want := c.Value.(type) {
	case bool:
		var got bool
		switch t := v.(type) {
		case bool:
			got = t
		case string:
			b, ok := parseBool(t)
			if !ok {
				return c.Op == "ne"
			}
			got = b
		default:
			return c.Op == "ne"
		}
		switch c.Op {
		case "eq":
			return got == want
		case "ne":
			return got != want
		}
		return false
	case float64:
		if f, ok := toFloat(v); ok {
			return ordered(c.Op, compareFloat(f, want))
		}
		s, ok := v.(string)
		if !ok {
			return c.Op == "ne"
		}
		switch c.Op {
		case "gt", "ge", "lt", "le":
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(f) {
				return false
			}
			return ordered(c.Op, compareFloat(f, want))
		}
		lit := c.raw
		if lit == "" {
			lit = strconv.FormatFloat(want, 'f', -1, 64)
		}
		return compareStrings(c.Op, s, lit, exact)
	case string:
		switch t := v.(type) {
		case string:
			switch c.Op {
			case "eq", "ne", "gt", "ge", "lt", "le":
				if a, ok := parseTime(t); ok {
					if b, ok := parseTime(want); ok {
						return ordered(c.Op, a.Compare(b))
					}
				}
			}
			return compareStrings(c.Op, t, want, exact)
		case bool:
			b, ok := parseBool(want)
			if c.Op == "eq" {
				return ok && b == t
			}
			if c.Op == "ne" {
				return !ok || b != t
			}
			return false
		default:
			f, ok := toFloat(v)
			if !ok {
				return c.Op == "ne"
			}
			w, err := strconv.ParseFloat(strings.TrimSpace(want), 64)
			if err != nil {
				return c.Op == "ne"
			}
			return ordered(c.Op, compareFloat(f, w))
		}
	}
	return false
}

func compareStrings(op, got, want string, exact bool) bool {
	if !exact {
		got, want = strings.ToLower(got), strings.ToLower(want)
	}
	switch op {
	case "co":
		return strings.Contains(got, want)
	case "sw":
		return strings.HasPrefix(got, want)
	case "ew":
		return strings.HasSuffix(got, want)
	}
	return ordered(op, strings.Compare(got, want))
}
