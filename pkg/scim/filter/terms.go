package filter

import "strings"

// Term is one `attribute eq "string"` condition that every resource matching
// a filter satisfies. Path is canonical: lower-case, dotted, without the core
// or enterprise schema URN ("username", "externalid", "emails.value",
// "members.value", "manager.value"); attributes of other extensions keep
// their lower-cased URN ("urn:example:ext:1.0:badge"). Value is as written in
// the filter; compare it with the case rule CaseExact(Path) gives, which is
// the rule Match applies.
type Term struct {
	Path  string
	Value string
}

// valueShorthand reports whether name is a complex attribute that a filter
// may compare without a sub-attribute, meaning its "value"
// (`members eq "id"`).
func valueShorthand(name string) bool {
	switch name {
	case "emails", "phonenumbers", "ims", "photos", "entitlements", "roles",
		"x509certificates", "groups", "members", "manager":
		return true
	}
	return false
}

// EqualityTerms returns the string equality conditions that must all hold
// for e to match: the eq comparisons with a string value along e's top-level
// chain of "and", including those inside a value path on that chain
// (`emails[value eq "x"]` gives emails.value = "x"). Conditions under "or" or
// "not" are not returned. Stores use the terms to narrow candidates with an
// index and then run Match on them; an empty result means no narrowing is
// possible.
func EqualityTerms(e Expr) []Term {
	var out []Term
	collectTerms(e, "", &out)
	return out
}

func collectTerms(e Expr, parent string, out *[]Term) {
	switch t := e.(type) {
	case *Logical:
		if t.Op == "and" {
			collectTerms(t.Left, parent, out)
			collectTerms(t.Right, parent, out)
		}
	case *ValuePath:
		if parent == "" {
			collectTerms(t.Filter, termPath("", t.Attr), out)
		}
	case *Compare:
		s, ok := t.Value.(string)
		if t.Op != "eq" || !ok {
			return
		}
		path := termPath(parent, t.Path)
		if parent == "" && t.Path.Sub == "" && valueShorthand(path) {
			path += ".value"
		}
		*out = append(*out, Term{Path: path, Value: s})
	}
}

func termPath(parent string, p AttrPath) string {
	k := pathKey(parent, p)
	if p.URN != "" && parent == "" && !IsCoreURN(p.URN) && !IsEnterpriseURN(p.URN) {
		k = strings.ToLower(p.URN) + ":" + k
	}
	return k
}
