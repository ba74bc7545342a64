package patch

import (
	"strings"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
)

// Path is a parsed PATCH path (RFC 7644 §3.5.2 PATH = attrPath / valuePath
// [subAttr]): an optional schema URN, an attribute, an optional value filter
// and an optional sub-attribute. Examples:
//
//	name.familyName                                         Attr name, Sub familyName
//	emails[type eq "work"].value                             Attr emails, Filter, Sub value
//	members[value eq "x"]                                    Attr members, Filter
//	urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager   URN, Attr manager
//	urn:ietf:params:scim:schemas:extension:enterprise:2.0:User           URN only: the whole extension
type Path struct {
	URN    string
	Attr   string
	Filter filter.Expr
	Sub    string
}

// String renders the path.
func (p Path) String() string {
	var b strings.Builder
	if p.URN != "" {
		b.WriteString(p.URN)
		if p.Attr != "" {
			b.WriteByte(':')
		}
	}
	b.WriteString(p.Attr)
	if p.Filter != nil {
		b.WriteString("[" + p.Filter.String() + "]")
	}
	if p.Sub != "" {
		b.WriteString("." + p.Sub)
	}
	return b.String()
}

// ParsePath parses a PATCH path. Attribute names keep their spelling (they
// are matched case-insensitively when applied). A path that is exactly the
// enterprise extension's URN names the whole extension (Attr is empty). It
// returns *Error invalidPath on failure.
func ParsePath(s string) (Path, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Path{}, errorf(ScimInvalidPath, "path is empty")
	}
	if len(s) > filter.MaxLength {
		return Path{}, errorf(ScimInvalidPath, "path is longer than %d bytes", filter.MaxLength)
	}
	head, rest := s, ""
	if i := strings.IndexByte(s, '['); i >= 0 {
		head, rest = s[:i], s[i:]
	}
	var p Path
	attr := head
	if len(head) > 4 && strings.EqualFold(head[:4], "urn:") {
		if rest == "" && filter.IsEnterpriseURN(head) {
			return Path{URN: head}, nil
		}
		i := strings.LastIndexByte(head, ':')
		p.URN, attr = head[:i], head[i+1:]
		if len(p.URN) <= 4 {
			return Path{}, errorf(ScimInvalidPath, "%q is not a valid path", s)
		}
	}
	if rest == "" {
		p.Attr, p.Sub, _ = strings.Cut(attr, ".")
		if !validName(p.Attr) || (strings.Contains(attr, ".") && !validName(p.Sub)) {
			return Path{}, errorf(ScimInvalidPath, "%q is not a valid path (expected [urn:…:]attribute[.subAttribute] or attribute[filter][.subAttribute])", s)
		}
		return p, nil
	}
	p.Attr = attr
	if !validName(p.Attr) {
		return Path{}, errorf(ScimInvalidPath, "%q is not a valid path: a value filter must follow an attribute name", s)
	}
	end := closingBracket(rest)
	if end < 0 {
		return Path{}, errorf(ScimInvalidPath, "%q is not a valid path: \"[\" is not closed", s)
	}
	f, err := filter.Parse(rest[1:end])
	if err != nil {
		return Path{}, errorf(ScimInvalidPath, "%q is not a valid path: %v", s, err)
	}
	p.Filter = f
	after := rest[end+1:]
	switch {
	case after == "":
	case after[0] == '.' && validName(after[1:]):
		p.Sub = after[1:]
	default:
		return Path{}, errorf(ScimInvalidPath, "%q is not a valid path: only \".subAttribute\" may follow \"]\"", s)
	}
	return p, nil
}

// closingBracket returns the index in s (which starts with '[') of the ']'
// that closes it, skipping quoted strings, or -1.
func closingBracket(s string) int {
	inQuote, escaped := false, false
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == ']':
			return i
		}
	}
	return -1
}

// validName reports whether s is an RFC 7643 ATTRNAME (or "$ref").
func validName(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '$' && len(s) > 1) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$') {
			return false
		}
	}
	return true
}
