package scim

import "fmt"

// HTTP statuses the Error schema carries. Spelled out here so the domain
// does not import net/http.
const (
	StatusBadRequest         = 400
	StatusUnauthorized       = 401
	StatusNotFound           = 404
	StatusConflict           = 409
	StatusPreconditionFailed = 412
	StatusServiceUnavailable = 503
)

// scimType values of RFC 7644 §3.12.
const (
	TypeInvalidSyntax = "invalidSyntax"
	TypeInvalidValue  = "invalidValue"
	TypeUniqueness    = "uniqueness"
	TypeInvalidFilter = "invalidFilter"
	TypeMutability    = "mutability"
	TypeInvalidPath   = "invalidPath"
	TypeNoTarget      = "noTarget"
	TypeInvalidVers   = "invalidVers"
	TypeTooMany       = "tooMany"
)

// Error is a SCIM protocol error (RFC 7644 §3.12): what the client did
// wrong, with the HTTP status the Error schema carries. Every error a
// client can cause is an *Error; anything else is a server fault.
type Error struct {
	Status   int
	ScimType string // optional
	Detail   string // never empty
	err      error
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("scim %d: %s", e.Status, e.Detail)
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.err }

func errorf(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// ErrUnauthorized is the one answer to an unknown directory, a missing
// token and a wrong token, so directory ids cannot be probed.
var ErrUnauthorized = &Error{Status: StatusUnauthorized, Detail: "Authentication failed: missing or invalid bearer token"}

// NotFound is the error for an unknown resource id.
func NotFound(id string) *Error {
	return errorf(StatusNotFound, "", "Resource %s not found", id)
}

// InvalidSyntax is the error for a body that is not a JSON object.
func InvalidSyntax(detail string) *Error {
	return errorf(StatusBadRequest, TypeInvalidSyntax, "%s", detail)
}

func invalidValue(format string, args ...any) *Error {
	return errorf(StatusBadRequest, TypeInvalidValue, format, args...)
}
