// Package patch parses SCIM PATCH requests (RFC 7644 §3.5.2) and applies
// their operations to a resource held as decoded JSON, with the tolerance
// identity providers need (IDP-DIALECTS.md §4.7): case-insensitive op and
// attribute names, pathless values with dotted and URN-prefixed keys,
// value-path filters, Entra's "replace a filtered path that matches nothing
// adds it", Okta's echo of the resource id, and group membership changes
// split out of the request so that they can be stored as their own
// aggregate. It knows nothing of HTTP or storage.
package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SCIM error types (RFC 7644 §3.12) that this package reports.
const (
	ScimInvalidSyntax = "invalidSyntax"
	ScimInvalidPath   = "invalidPath"
	ScimNoTarget      = "noTarget"
	ScimMutability    = "mutability"
	ScimInvalidValue  = "invalidValue"
)

// Error is a PATCH failure with its SCIM error type. Every error this
// package returns is an *Error; the HTTP layer maps it to 400 with
// "scimType" ScimType and "detail" Detail.
type Error struct {
	ScimType string
	Detail   string
}

func (e *Error) Error() string { return e.ScimType + ": " + e.Detail }

func errorf(scimType, format string, args ...any) *Error {
	return &Error{ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// Operation is one PATCH operation. Op is lower-case (add, replace or
// remove); Path is as sent ("" for a pathless operation); Value is decoded
// JSON (string, float64, bool, nil, []any, map[string]any).
type Operation struct {
	Op    string
	Path  string
	Value any
}

// ParseRequest parses a PatchOp message. The "Operations" key and each
// operation's "op", "path" and "value" keys are matched case-insensitively;
// op names are too ("Add", "Replace", "Remove"); "schemas" is optional and
// not checked. It returns *Error:
//   - invalidSyntax for a body that is not a JSON object, a missing or empty
//     Operations array, an unknown op, or add/replace without a value;
//   - invalidPath for a path ParsePath rejects;
//   - noTarget for remove without a path (RFC 7644 §3.5.2.2).
func ParseRequest(body []byte) ([]Operation, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errorf(ScimInvalidSyntax, "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errorf(ScimInvalidSyntax, "request body has data after the JSON object")
	}
	msg, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(ScimInvalidSyntax, "request body must be a JSON object")
	}
	raw, ok := getFold(msg, "Operations")
	if !ok || raw == nil {
		return nil, errorf(ScimInvalidSyntax, `request body has no "Operations"`)
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, errorf(ScimInvalidSyntax, `"Operations" must be an array`)
	}
	if len(list) == 0 {
		return nil, errorf(ScimInvalidSyntax, `"Operations" must contain at least one operation`)
	}
	ops := make([]Operation, 0, len(list))
	for i, el := range list {
		op, err := parseOperation(el)
		if err != nil {
			err.Detail = fmt.Sprintf("operation %d: %s", i+1, err.Detail)
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOperation(el any) (Operation, *Error) {
	m, ok := el.(map[string]any)
	if !ok {
		return Operation{}, errorf(ScimInvalidSyntax, "an operation must be a JSON object")
	}
	rawOp, _ := getFold(m, "op")
	name, ok := rawOp.(string)
	if !ok {
		return Operation{}, errorf(ScimInvalidSyntax, `"op" must be one of add, replace or remove`)
	}
	op := Operation{Op: strings.ToLower(strings.TrimSpace(name))}
	switch op.Op {
	case "add", "replace", "remove":
	default:
		return Operation{}, errorf(ScimInvalidSyntax, `unknown op %q: must be add, replace or remove`, name)
	}
	if rawPath, ok := getFold(m, "path"); ok && rawPath != nil {
		path, ok := rawPath.(string)
		if !ok {
			return Operation{}, errorf(ScimInvalidPath, `"path" must be a string`)
		}
		op.Path = strings.TrimSpace(path)
	}
	if op.Path != "" {
		if _, err := ParsePath(op.Path); err != nil {
			return Operation{}, err.(*Error)
		}
	}
	value, hasValue := getFold(m, "value")
	op.Value = value
	switch {
	case op.Op == "remove" && op.Path == "":
		return Operation{}, errorf(ScimNoTarget, "remove requires a path")
	case op.Op != "remove" && !hasValue:
		return Operation{}, errorf(ScimInvalidSyntax, "%s requires a value", op.Op)
	}
	return op, nil
}

// getFold returns obj's value for name, matched case-insensitively; the
// exact spelling wins, else the smallest matching key, so the result never
// depends on map iteration order.
func getFold(obj map[string]any, name string) (any, bool) {
	k, ok := keyFold(obj, name)
	if !ok {
		return nil, false
	}
	return obj[k], true
}

// keyFold returns the key of obj that equals name case-insensitively.
func keyFold(obj map[string]any, name string) (string, bool) {
	if _, ok := obj[name]; ok {
		return name, true
	}
	best, found := "", false
	for k := range obj {
		if strings.EqualFold(k, name) && (!found || k < best) {
			best, found = k, true
		}
	}
	return best, found
}

// setFold sets name in obj, keeping the spelling of an existing key; a nil
// value removes the attribute (RFC 7643 §2.5: null is unassigned).
func setFold(obj map[string]any, name string, v any) {
	k, ok := keyFold(obj, name)
	if !ok {
		k = name
	}
	if v == nil {
		delete(obj, k)
		return
	}
	obj[k] = v
}

func deleteFold(obj map[string]any, name string) {
	if k, ok := keyFold(obj, name); ok {
		delete(obj, k)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// deepCopy copies decoded JSON so that Apply never shares mutable state
// with its input.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, el := range t {
			m[k] = deepCopy(el)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, el := range t {
			l[i] = deepCopy(el)
		}
		return l
	}
	return v
}
