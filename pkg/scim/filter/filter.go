// Package filter parses and evaluates SCIM 2.0 filter expressions
// (RFC 7644 §3.4.2.2), with the tolerance real identity providers need.
//
// The parser is a small hand-written recursive-descent parser rather than
// github.com/scim2/filter-parser/v2 (which DESIGN.md suggested evaluating):
// that library rejects the unquoted values Microsoft documents
// (`externalId eq jyoung`) and reports failures as
// `parse conflict [00:001]: expected op.Or or[func func func func] but got "ex"`,
// which is useless as the "detail" of a SCIM error. Here every error names
// the position and what was expected, the grammar's tolerance is explicit,
// and nesting and length are bounded so hostile input cannot exhaust the
// stack.
//
// Accepted beyond the RFC's ABNF:
//   - unquoted values (`externalId eq jyoung`): a bare token that is not a
//     JSON number, true, false or null is a string;
//   - attribute names, operators, and/or/not and true/false/null in any case;
//   - `+` for spaces and percent-encoding, for callers that hand over an
//     undecoded query string, and a trailing `&`. These repairs are tried only
//     when the filter as given does not parse, so a value that legitimately
//     holds `+` (an email address) is never altered; `+` inside a quoted
//     string is never touched by the `+` repair;
//   - a sub-attribute after a value path (`emails[type eq "work"].value eq "x"`),
//     read as `emails[type eq "work" and value eq "x"]`;
//   - surrounding whitespace and runs of whitespace between tokens.
//
// The gateway passes url-decoded filter strings; the repairs exist for
// clients and proxies that double-encode or do not encode at all.
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// ErrInvalidFilter is wrapped by every parse error. The error's text is
// suitable as the "detail" of a SCIM invalidFilter error.
var ErrInvalidFilter = errors.New("invalid filter")

// Limits on filters accepted by Parse. A filter over either limit is
// rejected with ErrInvalidFilter, never a stack overflow.
const (
	MaxLength = 4096 // bytes
	MaxDepth  = 64   // nested parentheses, not(…) and value paths
)

// Expr is a node of a parsed filter: *Compare, *Logical, *Not or *ValuePath.
// String renders it in canonical filter syntax that Parse reads back to an
// equal tree.
type Expr interface {
	String() string
}

// AttrPath names an attribute: an optional schema URN, an attribute name and
// an optional sub-attribute (`name.familyName`,
// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`).
// Names are kept as written; comparisons are case-insensitive.
type AttrPath struct {
	URN  string
	Attr string
	Sub  string
}

// String renders the path as written in a filter.
func (p AttrPath) String() string {
	var b strings.Builder
	if p.URN != "" {
		b.WriteString(p.URN)
		b.WriteByte(':')
	}
	b.WriteString(p.Attr)
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
	return b.String()
}

// Compare is `path op value` or `path pr`. Op is lower-case: eq ne co sw ew
// gt ge lt le pr. Value is a string, float64, bool or nil (null; also nil for
// pr).
type Compare struct {
	Path  AttrPath
	Op    string
	Value any
	// raw is the literal text of a number, so that `externalId eq 0042`
	// still matches the string "0042" and String() round-trips exactly.
	raw string
}

// String renders the comparison.
func (c *Compare) String() string {
	if c.Op == "pr" {
		return c.Path.String() + " pr"
	}
	return c.Path.String() + " " + c.Op + " " + c.valueString()
}

func (c *Compare) valueString() string {
	switch v := c.Value.(type) {
	case nil:
		return "null"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case float64:
		if c.raw != "" {
			return c.raw
		}
		b, err := json.Marshal(v)
		if err != nil { // NaN or Inf, only from hand-built trees
			return "null"
		}
		return string(b)
	case string:
		return quote(v)
	default:
		return "null"
	}
}

// quote renders s as a JSON string without HTML escaping.
func quote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return strings.TrimSuffix(buf.String(), "\n")
}

// Logical is `Left and Right` or `Left or Right`; Op is "and" or "or".
type Logical struct {
	Op          string
	Left, Right Expr
}

// String renders the expression with only the parentheses its shape needs:
// and binds tighter than or, and both associate to the left as Parse reads
// them.
func (l *Logical) String() string {
	left, right := l.Left.String(), l.Right.String()
	if ll, ok := l.Left.(*Logical); ok && ll.Op == "or" && l.Op == "and" {
		left = "(" + left + ")"
	}
	if rl, ok := l.Right.(*Logical); ok && (rl.Op == l.Op || rl.Op == "or") {
		right = "(" + right + ")"
	}
	return left + " " + l.Op + " " + right
}

// Not is `not (Expr)`.
type Not struct {
	Expr Expr
}

// String renders the negation.
func (n *Not) String() string { return "not (" + n.Expr.String() + ")" }

// ValuePath is `attr[filter]`: it matches when some value of the
// multi-valued (or complex) attribute Attr satisfies Filter, whose paths are
// relative to that value (`emails[type eq "work" and primary eq true]`).
type ValuePath struct {
	Attr   AttrPath
	Filter Expr
}

// String renders the value path.
func (v *ValuePath) String() string {
	return v.Attr.String() + "[" + v.Filter.String() + "]"
}
