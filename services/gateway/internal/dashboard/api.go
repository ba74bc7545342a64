package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/dsync-dev/dsync/services/gateway/internal/backenderr"
)

// APIError is an error answer of the REST API.
type APIError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	// Body is the answer's raw body.
	Body []byte `json:"-"`
}

func (e *APIError) Error() string { return fmt.Sprintf("api %d %s: %s", e.Status, e.Code, e.Message) }

func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	ok := errors.As(err, &ae)
	return ae, ok
}

// bufferedResponse collects an in-process API answer.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// call sends one request to the REST API in-process with the API key and
// decodes a 2xx JSON answer into out (when not nil). Other answers become
// *APIError. The request goes through the gateway's whole handler stack, so
// it is authenticated, logged and traced like any API call.
func (d *Dashboard) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.RequestURI = target
	req.Host = "dashboard.internal"
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("Authorization", "Bearer "+d.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsync-dashboard")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp := &bufferedResponse{header: http.Header{}}
	d.cfg.API.ServeHTTP(resp, req)
	if resp.status == 0 {
		resp.status = http.StatusOK
	}
	if resp.status < 200 || resp.status > 299 {
		ae := &APIError{Status: resp.status, Body: resp.body.Bytes()}
		if err := json.Unmarshal(resp.body.Bytes(), ae); err != nil || ae.Message == "" {
			ae.Message = http.StatusText(resp.status)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// list is the REST API's list envelope.
type list[T any] struct {
	Data         []T `json:"data"`
	ListMetadata struct {
		Before *string `json:"before"`
		After  *string `json:"after"`
	} `json:"list_metadata"`
}

func (l list[T]) before() string { return deref(l.ListMetadata.Before) }
func (l list[T]) after() string  { return deref(l.ListMetadata.After) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type grpcFailure struct {
	status           int
	heading, message string
}

// grpcStatus turns an error from the projector or dispatcher into what a
// person can act on; false for errors that are not a backend's answer
// (backenderr.Unknown), which fail logs as a 502.
func grpcStatus(err error) (grpcFailure, bool) {
	kind, message := backenderr.Classify(err)
	var heading string
	switch kind {
	case backenderr.NotFound:
		heading = "Not found"
	case backenderr.Invalid:
		heading = "Request not accepted"
	case backenderr.NotReady:
		heading, message = "Catching up", "The read model has not caught up with recent writes yet. Reload in a moment."
	case backenderr.Unavailable:
		heading, message = "Temporarily unavailable", "A backend service is unavailable. Check the health page."
	case backenderr.Misconfigured:
		// Every backend call the dashboard makes exists in this version; an
		// older projector or dispatcher behind a newer gateway is a
		// deployment mistake the operator must see.
		heading, message = "Backend out of date", "A backend service is older than this gateway. Upgrade it; the health page shows which."
	default:
		return grpcFailure{}, false
	}
	return grpcFailure{kind.HTTPStatus(), heading, message}, true
}
