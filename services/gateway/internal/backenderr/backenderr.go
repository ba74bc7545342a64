// Package backenderr classifies the gRPC errors of the gateway's backends,
// the projector's DirectoryService and the dispatcher's WebhookService, so
// that the REST API, the SCIM API and the dashboard agree on what a status
// means and differ only in how they word it.
package backenderr

import (
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is what a backend error means to the gateway's callers.
type Kind int

const (
	// Unknown is anything the caller cannot act on: not a gRPC status, or
	// a code that is a fault of the gateway or the backend (Internal,
	// Unknown, AlreadyExists, …). It is the zero value so that an
	// unclassified error is never mistaken for a client's.
	Unknown Kind = iota
	// NotFound is a resource the backend does not hold.
	NotFound
	// Invalid is a request the backend refused (InvalidArgument); its
	// message is written for the client.
	Invalid
	// NotReady is a read model that has not yet caught up with the
	// consistency token the gateway sent (FailedPrecondition).
	NotReady
	// Unavailable is a backend that could not answer in time or at all
	// (Unavailable, DeadlineExceeded).
	Unavailable
	// Misconfigured is a backend that does not implement a call
	// (Unimplemented). The gateway calls only RPCs its backends implement,
	// so this is an older backend behind a newer gateway, or something
	// else at its address: a deployment error, to be logged at Error.
	Misconfigured
)

// Classify finds a gRPC status anywhere in err's chain and says what it
// means. message is the status's own message (not the wrapping's), and ""
// when err holds no status. Only the messages of NotFound and Invalid are written for
// clients; the others may hold backend internals.
func Classify(err error) (kind Kind, message string) {
	// The backend's own words, not the wrapping's: status.FromError on a
	// wrapped error would make the whole chain, "rpc error: code = …"
	// included, the message shown to clients.
	var carrier interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &carrier) {
		return Unknown, ""
	}
	st := carrier.GRPCStatus()
	if st == nil {
		return Unknown, ""
	}
	switch st.Code() {
	case codes.NotFound:
		return NotFound, st.Message()
	case codes.InvalidArgument:
		return Invalid, st.Message()
	case codes.FailedPrecondition:
		return NotReady, st.Message()
	case codes.Unavailable, codes.DeadlineExceeded:
		return Unavailable, st.Message()
	case codes.Unimplemented:
		return Misconfigured, st.Message()
	}
	return Unknown, st.Message()
}

// HTTPStatus is the status every rendering answers a kind with. Unknown is
// 500; a rendering may choose another status for it (the dashboard's 502).
func (k Kind) HTTPStatus() int {
	switch k {
	case NotFound:
		return http.StatusNotFound
	case Invalid:
		return http.StatusUnprocessableEntity
	case NotReady, Unavailable, Misconfigured:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Retryable reports whether the same request may succeed later without
// change, so an HTTP answer carries Retry-After. A misconfigured backend is
// retryable: the operator's fix (an upgrade) makes the request succeed.
func (k Kind) Retryable() bool {
	switch k {
	case NotReady, Unavailable, Misconfigured:
		return true
	}
	return false
}

func (k Kind) String() string {
	switch k {
	case NotFound:
		return "not_found"
	case Invalid:
		return "invalid"
	case NotReady:
		return "not_ready"
	case Unavailable:
		return "unavailable"
	case Misconfigured:
		return "misconfigured"
	}
	return "unknown"
}
