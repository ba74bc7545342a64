package filter

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse parses a SCIM filter. Errors wrap ErrInvalidFilter and say where the
// filter went wrong and what was expected there.
//
// When s does not parse as given, Parse retries with the repairs listed in
// the package documentation (trailing `&`, `+` as space outside quoted
// strings, percent-decoding) and returns the first that parses; if none
// does, the error describes the filter as given.
func Parse(s string) (Expr, error) {
	e, err := parse(s)
	if err == nil {
		return e, nil
	}
	for _, alt := range repairs(s) {
		if e, altErr := parse(alt); altErr == nil {
			return e, nil
		}
	}
	return nil, err
}

// repairs lists the variants of an unparsable filter worth a retry.
func repairs(s string) []string {
	var out []string
	t := strings.TrimSpace(s)
	for strings.HasSuffix(t, "&") {
		t = strings.TrimSpace(strings.TrimSuffix(t, "&"))
	}
	if t != strings.TrimSpace(s) {
		out = append(out, t)
	}
	// Percent-decoding first: it also turns '+' into spaces, and a fully
	// encoded query must not be read as an unquoted value full of %22s.
	if strings.Contains(t, "%") {
		if u, err := url.QueryUnescape(t); err == nil && u != t {
			out = append(out, strings.TrimRight(strings.TrimSpace(u), "&"))
		}
	}
	if strings.Contains(t, "+") {
		out = append(out, plusToSpace(t))
	}
	return out
}

// plusToSpace replaces '+' by ' ' outside double-quoted strings: inside a
// quoted value a '+' is far more likely a literal (user+tag@example.com)
// than an encoded space.
func plusToSpace(s string) string {
	b := []byte(s)
	inQuote, escaped := false, false
	for i, c := range b {
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '+':
			b[i] = ' '
		}
	}
	return string(b)
}

func isOperator(op string) bool {
	switch op {
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr":
		return true
	}
	return false
}

type parser struct {
	s       string
	pos     int
	depth   int
	inValue bool // inside attr[…], where value paths may not nest
}

func parse(s string) (Expr, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("%w: filter is %d bytes long, the limit is %d", ErrInvalidFilter, len(s), MaxLength)
	}
	p := &parser{s: s}
	p.skipSpace()
	if p.eof() {
		return nil, fmt.Errorf("%w: filter is empty", ErrInvalidFilter)
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if !p.eof() {
		return nil, p.errorf("expected and, or or the end of the filter, found %s", p.found())
	}
	return e, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at position %d: %s", ErrInvalidFilter, p.pos+1, fmt.Sprintf(format, args...))
}

// found describes the input at the current position for an error message.
func (p *parser) found() string {
	if p.eof() {
		return "the end of the filter"
	}
	rest := p.s[p.pos:]
	end := strings.IndexAny(rest, " \t\r\n")
	if end < 0 {
		end = len(rest)
	}
	if end > 20 {
		end = 20
	}
	if end == 0 {
		end = 1
	}
	tok := rest[:end]
	if !utf8.ValidString(tok) {
		tok = strings.ToValidUTF8(tok, "\uFFFD")
	}
	return strconv.Quote(tok)
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.pos]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipSpace skips whitespace and reports whether there was any.
func (p *parser) skipSpace() bool {
	start := p.pos
	for !p.eof() && isSpace(p.s[p.pos]) {
		p.pos++
	}
	return p.pos > start
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isNameChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '$'
}

// keyword consumes kw (any case) when it stands as a whole word here.
func (p *parser) keyword(kw string) bool {
	end := p.pos + len(kw)
	if end > len(p.s) || !strings.EqualFold(p.s[p.pos:end], kw) {
		return false
	}
	if end < len(p.s) && (isNameChar(p.s[end]) || p.s[end] == '.' || p.s[end] == ':') {
		return false
	}
	p.pos = end
	return true
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errorf("filter is nested more than %d levels deep", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseOr: and-expr { "or" and-expr }
func (p *parser) parseOr() (Expr, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for {
		save := p.pos
		p.skipSpace()
		if !p.keyword("or") {
			p.pos = save
			return left, nil
		}
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &Logical{Op: "or", Left: left, Right: right}
	}
}

// parseAnd: unary { "and" unary }
func (p *parser) parseAnd() (Expr, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		save := p.pos
		p.skipSpace()
		if !p.keyword("and") {
			p.pos = save
			return left, nil
		}
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = &Logical{Op: "and", Left: left, Right: right}
	}
}

// parseUnary: "(" or-expr ")" | "not" "(" or-expr ")" | attribute expression
func (p *parser) parseUnary() (Expr, error) {
	p.skipSpace()
	if p.eof() {
		return nil, p.errorf("expected an attribute, \"(\" or \"not\", found the end of the filter")
	}
	if p.peek() == '(' {
		return p.parseGroup()
	}
	save := p.pos
	if p.keyword("not") {
		p.skipSpace()
		if p.peek() == '(' {
			e, err := p.parseGroup()
			if err != nil {
				return nil, err
			}
			return &Not{Expr: e}, nil
		}
		// "not" not followed by "(" is an attribute named not.
		p.pos = save
	}
	return p.parseAttrExpr()
}

// parseGroup parses "(" or-expr ")" with the cursor on "(".
func (p *parser) parseGroup() (Expr, error) {
	open := p.pos
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	p.pos++
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peek() != ')' {
		return nil, p.errorf("expected \")\" to close the \"(\" at position %d, found %s", open+1, p.found())
	}
	p.pos++
	return e, nil
}

func (p *parser) parseAttrExpr() (Expr, error) {
	path, err := p.parseAttrPath()
	if err != nil {
		return nil, err
	}
	if p.peek() == '[' {
		return p.parseValuePath(path)
	}
	return p.parseComparison(path)
}

func (p *parser) parseValuePath(path AttrPath) (Expr, error) {
	if p.inValue {
		return nil, p.errorf("a value filter cannot contain another value filter")
	}
	if path.Sub != "" {
		return nil, p.errorf("a value filter applies to an attribute, not to the sub-attribute %q", path.String())
	}
	open := p.pos
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	p.pos++
	p.inValue = true
	inner, err := p.parseOr()
	p.inValue = false
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peek() != ']' {
		return nil, p.errorf("expected \"]\" to close the \"[\" at position %d, found %s", open+1, p.found())
	}
	p.pos++
	// emails[type eq "work"].value eq "x" — not in the RFC's grammar but
	// used by clients; it means emails[type eq "work" and value eq "x"].
	if p.peek() == '.' {
		p.pos++
		start := p.pos
		for !p.eof() && isNameChar(p.s[p.pos]) {
			p.pos++
		}
		sub := p.s[start:p.pos]
		if !validName(sub) {
			p.pos = start
			return nil, p.errorf("expected a sub-attribute name after \"]\", found %s", p.found())
		}
		cmp, err := p.parseComparison(AttrPath{Attr: sub})
		if err != nil {
			return nil, err
		}
		inner = &Logical{Op: "and", Left: inner, Right: cmp}
	}
	return &ValuePath{Attr: path, Filter: inner}, nil
}

// validName reports whether s is an RFC 7643 ATTRNAME (or "$ref").
func validName(s string) bool {
	if s == "" {
		return false
	}
	if !isLetter(s[0]) && !(s[0] == '$' && len(s) > 1) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// parseAttrPath reads [URN ":"] attr ["." sub]. A URN is recognised by its
// "urn:" prefix; its last colon separates it from the attribute, since URNs
// themselves contain dots ("…:enterprise:2.0:User").
func (p *parser) parseAttrPath() (AttrPath, error) {
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		if !isNameChar(c) && c != '.' && c != ':' {
			break
		}
		p.pos++
	}
	tok := p.s[start:p.pos]
	if tok == "" {
		return AttrPath{}, p.errorf("expected an attribute name, found %s", p.found())
	}
	path, ok := splitAttrPath(tok)
	if !ok {
		p.pos = start
		return AttrPath{}, p.errorf("%q is not a valid attribute path (expected [urn:…:]name[.subAttribute])", tok)
	}
	return path, nil
}

// splitAttrPath splits a textual attribute path.
func splitAttrPath(tok string) (AttrPath, bool) {
	var path AttrPath
	rest := tok
	if len(tok) > 4 && strings.EqualFold(tok[:4], "urn:") {
		i := strings.LastIndexByte(tok, ':')
		path.URN, rest = tok[:i], tok[i+1:]
		if len(path.URN) <= 4 {
			return AttrPath{}, false
		}
	} else if strings.ContainsRune(tok, ':') {
		return AttrPath{}, false
	}
	path.Attr, path.Sub, _ = strings.Cut(rest, ".")
	if !validName(path.Attr) {
		return AttrPath{}, false
	}
	if strings.Contains(rest, ".") && !validName(path.Sub) {
		return AttrPath{}, false
	}
	return path, true
}

func (p *parser) parseComparison(path AttrPath) (Expr, error) {
	if !p.skipSpace() {
		return nil, p.errorf("expected a space and an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after %q, found %s", path.String(), p.found())
	}
	start := p.pos
	for !p.eof() && isLetter(p.s[p.pos]) {
		p.pos++
	}
	op := strings.ToLower(p.s[start:p.pos])
	if !isOperator(op) || (!p.eof() && isNameChar(p.s[p.pos])) {
		p.pos = start
		return nil, p.errorf("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after %q, found %s", path.String(), p.found())
	}
	if op == "pr" {
		return &Compare{Path: path, Op: op}, nil
	}
	p.skipSpace()
	c := &Compare{Path: path, Op: op}
	if err := p.parseValue(c); err != nil {
		return nil, err
	}
	return c, nil
}

// parseValue reads a JSON string, number, true, false or null, or — for
// IdPs that do not quote — a bare token, which is a string.
func (p *parser) parseValue(c *Compare) error {
	if p.eof() {
		return p.errorf("expected a value after %q, found the end of the filter", c.Op)
	}
	if p.peek() == '"' {
		start := p.pos
		p.pos++
		for {
			if p.eof() {
				p.pos = start
				return p.errorf("string starting here is not terminated by '\"'")
			}
			ch := p.s[p.pos]
			p.pos++
			if ch == '\\' {
				p.pos++
				continue
			}
			if ch == '"' {
				break
			}
		}
		if p.pos > len(p.s) {
			p.pos = start
			return p.errorf("string starting here is not terminated by '\"'")
		}
		var s string
		if err := json.Unmarshal([]byte(p.s[start:p.pos]), &s); err != nil {
			p.pos = start
			return p.errorf("invalid string literal: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		c.Value = s
		return nil
	}
	start := p.pos
	for !p.eof() {
		ch := p.s[p.pos]
		if isSpace(ch) || ch == ')' || ch == ']' {
			break
		}
		p.pos++
	}
	tok := p.s[start:p.pos]
	if tok == "" {
		return p.errorf("expected a value after %q, found %s", c.Op, p.found())
	}
	switch strings.ToLower(tok) {
	case "true":
		c.Value = true
		return nil
	case "false":
		c.Value = false
		return nil
	case "null":
		c.Value = nil
		return nil
	}
	if isNumber(tok) {
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			p.pos = start
			return p.errorf("number %s is out of range", tok)
		}
		c.Value, c.raw = f, tok
		return nil
	}
	c.Value = strings.ToValidUTF8(tok, "\uFFFD")
	return nil
}

// isNumber reports whether s is a JSON number.
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
