package patch

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
)

// EnterpriseURN is the enterprise user extension's schema URN, the key under
// which Apply puts enterprise attributes that a request names without it.
const EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// Apply applies ops in order to a deep copy of resource and returns the
// copy. It is all-or-nothing: on error it returns nil and an *Error whose
// Detail names the failing operation ("operation 3 (remove emails[…]): …");
// resource is never modified. A nil schema treats id and meta as read-only
// and the multi-valued attributes of users and groups as multi-valued; with
// any schema, an attribute that holds an array is multi-valued.
//
// Semantics (RFC 7644 §3.5.2, IDP-DIALECTS.md §4.7):
//   - Attribute names match existing keys case-insensitively; an existing
//     key keeps its spelling, a new one takes the request's.
//   - A pathless add/replace applies each key of its object value as a path:
//     "name.givenName" and "urn:…:enterprise:2.0:User:employeeNumber" land
//     in the nested object; a key that is an extension's URN merges its
//     object into the extension. "schemas" is ignored, as are read-only
//     attributes (meta, groups), except that "id" must equal the resource's
//     id (Okta echoes it) or the operation fails with mutability.
//   - Enterprise attributes named without the URN (Entra's "manager") go to
//     the enterprise extension on a user (a resource with userName or the
//     extension) unless the resource holds them at the top level.
//   - add on a multi-valued attribute appends; a value equal to an existing
//     one, or with the same "value" (and compatible "type"), is merged into
//     it instead of duplicated. replace on a multi-valued attribute replaces
//     the array. add and replace on a complex single-valued attribute merge
//     sub-attributes (RFC 7644 §3.5.2.1, §3.5.2.3), except that a value with
//     its own "value" sub-attribute (manager) replaces it whole. A string
//     value for manager means {"value": id}; a one-element array for a
//     single-valued attribute is unwrapped (Entra's manager). null or [] as
//     the value unassigns.
//   - A filtered path (emails[type eq "work"].value) applies to every
//     matching element; add/replace that matches nothing adds an element made
//     of the filter's eq conditions plus the value (Entra). remove with a
//     filter removes the matching elements (their sub-attribute, with
//     .sub) and fails with noTarget if nothing matches.
//   - remove without a filter unassigns the attribute; removing a missing
//     attribute is a no-op.
//   - When an operation sets primary true on an element of a multi-valued
//     attribute, primary is set to false on the others (RFC 7643 §2.4).
//   - Values are stored as sent: "True"/"False" strings stay strings for the
//     caller to normalise.
//   - Targeting a read-only attribute fails with mutability, as does
//     changing an immutable attribute that has a value.
func Apply(resource map[string]any, ops []Operation, schema Schema) (map[string]any, error) {
	if schema == nil {
		schema = StaticSchema{
			MultiValued: set("emails", "phonenumbers", "ims", "photos", "addresses", "groups",
				"entitlements", "roles", "x509certificates", "members"),
			ReadOnly: set("id", "meta"),
		}
	}
	out, _ := deepCopy(resource).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	a := applier{schema: schema, res: out}
	for i, op := range ops {
		if err := a.apply(op); err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				pe = &Error{ScimType: ScimInvalidValue, Detail: err.Error()}
			}
			desc := op.Op
			if op.Path != "" {
				desc += " " + op.Path
			}
			return nil, &Error{ScimType: pe.ScimType, Detail: fmt.Sprintf("operation %d (%s): %s", i+1, desc, pe.Detail)}
		}
	}
	return out, nil
}

type applier struct {
	schema Schema
	res    map[string]any
}

func (a *applier) apply(op Operation) error {
	name := strings.ToLower(strings.TrimSpace(op.Op))
	switch name {
	case "add", "replace", "remove":
	default:
		return errorf(ScimInvalidSyntax, "unknown op %q: must be add, replace or remove", op.Op)
	}
	if strings.TrimSpace(op.Path) == "" {
		if name == "remove" {
			return errorf(ScimNoTarget, "remove requires a path")
		}
		obj, ok := op.Value.(map[string]any)
		if !ok {
			return errorf(ScimInvalidValue, "a %s without a path needs an object value", name)
		}
		return a.applyObject(name, "", obj)
	}
	p, err := ParsePath(op.Path)
	if err != nil {
		return err
	}
	return a.applyPath(name, p, op.Value)
}

// applyObject applies each attribute of a pathless value (urn set: of an
// extension's object) in sorted key order, so that the result does not
// depend on map order.
func (a *applier) applyObject(op, urn string, obj map[string]any) error {
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		if urn == "" && strings.EqualFold(k, "schemas") {
			continue
		}
		p, err := ParsePath(k)
		if err != nil {
			return errorf(ScimInvalidPath, "attribute %q in the value is not a valid attribute name", k)
		}
		if urn != "" {
			if p.URN != "" {
				return errorf(ScimInvalidPath, "attribute %q inside %q is not a valid attribute name", k, urn)
			}
			p.URN = urn
		}
		if p.Filter == nil && p.Sub == "" && p.Attr != "" && a.schema.IsReadOnly(schemaName(p.URN, p.Attr)) {
			if strings.EqualFold(p.Attr, "id") && !a.sameID(v) {
				return errorf(ScimMutability, "id is read-only and differs from the resource's id")
			}
			continue // read-only attributes echoed in a value are ignored
		}
		if err := a.applyPath(op, p, v); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) sameID(v any) bool {
	cur, ok := getFold(a.res, "id")
	if !ok || cur == nil {
		return true // nothing to contradict
	}
	return reflect.DeepEqual(cur, v)
}

// schemaName is the name Schema methods receive for an attribute.
func schemaName(urn, attr string) string {
	n := strings.ToLower(attr)
	if urn != "" && !filter.IsCoreURN(urn) && !filter.IsEnterpriseURN(urn) {
		n = strings.ToLower(urn) + ":" + n
	}
	return n
}

func isEnterpriseAttr(attr string) bool {
	switch strings.ToLower(attr) {
	case "employeenumber", "costcenter", "organization", "division", "department", "manager":
		return true
	}
	return false
}

// extensionKey returns the resource's key for the extension urn, or "".
func (a *applier) extensionKey(urn string) string {
	if k, ok := keyFold(a.res, urn); ok {
		return k
	}
	if filter.IsEnterpriseURN(urn) {
		for k := range a.res {
			if filter.IsEnterpriseURN(k) {
				return k
			}
		}
	}
	return ""
}

// container returns the object that holds p's attribute: the resource, or
// the extension object p.URN names (created when create is set). It returns
// nil when the extension is absent and create is not set.
func (a *applier) container(p Path, create bool) (map[string]any, error) {
	urn := p.URN
	if urn == "" && isEnterpriseAttr(p.Attr) {
		if _, top := keyFold(a.res, p.Attr); !top {
			_, isUser := keyFold(a.res, "userName")
			if isUser || a.extensionKey(EnterpriseURN) != "" {
				urn = EnterpriseURN
			}
		}
	}
	if urn == "" || filter.IsCoreURN(urn) {
		return a.res, nil
	}
	key := a.extensionKey(urn)
	if key != "" {
		if m, ok := a.res[key].(map[string]any); ok {
			return m, nil
		}
	} else {
		key = urn
	}
	if !create {
		return nil, nil
	}
	m := map[string]any{}
	a.res[key] = m
	return m, nil
}

func (a *applier) applyPath(op string, p Path, value any) error {
	if p.Attr == "" { // the whole extension
		if op == "remove" || value == nil {
			if k := a.extensionKey(p.URN); k != "" {
				delete(a.res, k)
			}
			return nil
		}
		obj, ok := value.(map[string]any)
		if !ok {
			return errorf(ScimInvalidValue, "the value for %q must be an object", p.URN)
		}
		return a.applyObject(op, p.URN, obj)
	}
	name := schemaName(p.URN, p.Attr)
	if a.schema.IsReadOnly(name) || (p.Sub != "" && a.schema.IsReadOnly(name+"."+strings.ToLower(p.Sub))) {
		return errorf(ScimMutability, "attribute %q is read-only", p.Attr)
	}
	c, err := a.container(p, op != "remove")
	if err != nil {
		return err
	}
	if c == nil { // remove from an absent extension
		if p.Filter != nil {
			return errorf(ScimNoTarget, "no value of %q matches the filter", p.Attr)
		}
		return nil
	}
	key, exists := keyFold(c, p.Attr)
	if !exists {
		key = p.Attr
	}
	before := deepCopy(c[key])
	multi := a.schema.IsMultiValued(name)
	if _, isList := c[key].([]any); isList {
		multi = true
	}
	switch {
	case p.Filter != nil:
		err = applyFiltered(c, key, op, p, value, multi)
	case p.Sub != "":
		err = applySub(c, key, op, p.Sub, value, multi)
	default:
		err = applyAttr(c, key, op, value, multi)
	}
	if err != nil {
		return err
	}
	if a.schema.IsImmutable(name) && before != nil && !reflect.DeepEqual(before, c[key]) {
		return errorf(ScimMutability, "attribute %q is immutable", p.Attr)
	}
	return nil
}

// isEmpty reports whether v unassigns an attribute: null or [].
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	l, ok := v.([]any)
	return ok && len(l) == 0
}

// applyAttr handles a path without filter or sub-attribute.
func applyAttr(c map[string]any, key, op string, value any, multi bool) error {
	if op == "remove" || isEmpty(value) {
		delete(c, key)
		return nil
	}
	if multi {
		vals, ok := value.([]any)
		if !ok {
			vals = []any{value}
		}
		vals = deepCopy(vals).([]any)
		if op == "replace" {
			c[key] = vals
			fixPrimary(vals, allIndices(vals))
			return nil
		}
		cur, _ := c[key].([]any)
		if cur == nil && c[key] != nil {
			cur = []any{c[key]}
		}
		list, touched := addValues(cur, vals)
		fixPrimary(list, touched)
		c[key] = list
		return nil
	}
	if l, ok := value.([]any); ok {
		if len(l) != 1 {
			return errorf(ScimInvalidValue, "attribute %q is single-valued but the value has %d elements", key, len(l))
		}
		value = l[0]
	}
	value = deepCopy(value)
	if s, ok := value.(string); ok && strings.EqualFold(key, "manager") {
		if s == "" {
			delete(c, key)
			return nil
		}
		value = map[string]any{"value": s}
	}
	cur, curIsMap := c[key].(map[string]any)
	nv, newIsMap := value.(map[string]any)
	if curIsMap && newIsMap {
		if _, ref := getFold(nv, "value"); !ref {
			for _, k := range sortedKeys(nv) {
				setFold(cur, k, nv[k])
			}
			return nil
		}
	}
	c[key] = value
	return nil
}

// applySub handles attr.sub without a filter.
func applySub(c map[string]any, key, op, sub string, value any, multi bool) error {
	value = deepCopy(value)
	switch cur := c[key].(type) {
	case []any:
		if len(cur) == 0 && op != "remove" {
			c[key] = []any{map[string]any{sub: value}}
			return nil
		}
		for _, el := range cur {
			if m, ok := el.(map[string]any); ok {
				if op == "remove" {
					deleteFold(m, sub)
				} else {
					setFold(m, sub, deepCopy(value))
				}
			}
		}
		return nil
	case map[string]any:
		if op == "remove" {
			deleteFold(cur, sub)
		} else {
			setFold(cur, sub, value)
		}
		if len(cur) == 0 {
			delete(c, key)
		}
		return nil
	case nil:
		if op == "remove" || value == nil {
			return nil
		}
		el := map[string]any{sub: value}
		if multi {
			c[key] = []any{el}
		} else {
			c[key] = el
		}
		return nil
	default:
		return errorf(ScimInvalidPath, "attribute %q has no sub-attribute %q", key, sub)
	}
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func applyFiltered(c map[string]any, key, op string, p Path, value any, multi bool) error {
	var list []any
	single := false
	switch cur := c[key].(type) {
	case nil:
	case []any:
		list = cur
	case map[string]any:
		list, single = []any{cur}, true
	default:
		return errorf(ScimInvalidPath, "attribute %q is not complex and cannot be filtered", key)
	}
	var matched []int
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && filter.Match(p.Filter, m) {
			matched = append(matched, i)
		}
	}
	if op == "remove" || (p.Sub == "" && isEmpty(value)) {
		if len(matched) == 0 {
			if op != "remove" {
				return nil
			}
			return errorf(ScimNoTarget, "no value of %q matches %s", key, p.Filter)
		}
		if p.Sub != "" {
			for _, i := range matched {
				deleteFold(list[i].(map[string]any), p.Sub)
			}
			return nil
		}
		kept := list[:0:0]
		for i, el := range list {
			if !slices.Contains(matched, i) {
				kept = append(kept, el)
			}
		}
		if len(kept) == 0 {
			delete(c, key)
		} else if single {
			c[key] = kept[0]
		} else {
			c[key] = kept
		}
		return nil
	}
	var patchEl func(m map[string]any) error
	if p.Sub != "" {
		patchEl = func(m map[string]any) error {
			setFold(m, p.Sub, deepCopy(value))
			return nil
		}
	} else {
		v := value
		if l, ok := v.([]any); ok && len(l) == 1 {
			v = l[0]
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return errorf(ScimInvalidValue, "the value for %s must be an object", p)
		}
		patchEl = func(m map[string]any) error {
			for _, k := range sortedKeys(obj) {
				setFold(m, k, deepCopy(obj[k]))
			}
			return nil
		}
	}
	touched := matched
	if len(matched) == 0 {
		el := elementFromFilter(p.Filter)
		list = append(list, el)
		touched = []int{len(list) - 1}
	}
	for _, i := range touched {
		if err := patchEl(list[i].(map[string]any)); err != nil {
			return err
		}
	}
	switch {
	case single && len(list) == 1:
		c[key] = list[0]
	case !multi && len(list) == 1:
		c[key] = list[0]
	default:
		fixPrimary(list, touched)
		c[key] = list
	}
	return nil
}

// elementFromFilter builds the element a filtered add/replace creates when
// nothing matches: the eq conditions on its top-level "and" chain
// (emails[type eq "work"] gives {"type": "work"}).
func elementFromFilter(e filter.Expr) map[string]any {
	el := map[string]any{}
	var walk func(filter.Expr)
	walk = func(e filter.Expr) {
		switch t := e.(type) {
		case *filter.Logical:
			if t.Op == "and" {
				walk(t.Left)
				walk(t.Right)
			}
		case *filter.Compare:
			if t.Op == "eq" && t.Value != nil && t.Path.URN == "" && t.Path.Sub == "" {
				setFold(el, t.Path.Attr, t.Value)
			}
		}
	}
	walk(e)
	return el
}

func allIndices(l []any) []int {
	idx := make([]int, len(l))
	for i := range l {
		idx[i] = i
	}
	return idx
}

// addValues appends vals to cur, merging each value into an existing equal
// one (or one with the same "value" and a compatible "type") instead of
// duplicating it. It returns the list and the indices of the values added
// or merged.
func addValues(cur, vals []any) ([]any, []int) {
	list := slices.Clone(cur)
	var touched []int
	for _, v := range vals {
		i := slices.IndexFunc(list, func(el any) bool { return sameValue(el, v) })
		if i < 0 {
			list = append(list, v)
			touched = append(touched, len(list)-1)
			continue
		}
		if em, ok := list[i].(map[string]any); ok {
			if vm, ok := v.(map[string]any); ok {
				for _, k := range sortedKeys(vm) {
					setFold(em, k, vm[k])
				}
			}
		}
		touched = append(touched, i)
	}
	return list, touched
}

func sameValue(el, v any) bool {
	if reflect.DeepEqual(el, v) {
		return true
	}
	em, ok1 := el.(map[string]any)
	vm, ok2 := v.(map[string]any)
	if !ok1 || !ok2 {
		return false
	}
	ev, ok1 := getFold(em, "value")
	vv, ok2 := getFold(vm, "value")
	if !ok1 || !ok2 || !reflect.DeepEqual(ev, vv) {
		return false
	}
	et, ok1 := getFold(em, "type")
	vt, ok2 := getFold(vm, "type")
	if !ok1 || !ok2 {
		return true
	}
	es, ok1 := et.(string)
	vs, ok2 := vt.(string)
	return ok1 && ok2 && strings.EqualFold(es, vs)
}

func isTrue(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(strings.TrimSpace(t), "true")
	}
	return false
}

// fixPrimary keeps at most one primary value (RFC 7643 §2.4): when one of
// the touched elements is primary, the last such wins and every other
// element's primary is set to false.
func fixPrimary(list []any, touched []int) {
	winner := -1
	for _, i := range touched {
		if m, ok := list[i].(map[string]any); ok {
			if p, ok := getFold(m, "primary"); ok && isTrue(p) {
				winner = i
			}
		}
	}
	if winner < 0 {
		return
	}
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && i != winner {
			if p, ok := getFold(m, "primary"); ok && isTrue(p) {
				setFold(m, "primary", false)
			}
		}
	}
}
