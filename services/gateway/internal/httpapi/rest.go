package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/pkg/workos"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/backenderr"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
)

// restError is the REST API's error body.
type restError struct {
	Message string `json:"message"`
	Code    string `json:"code"`
}

func writeRESTError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, restError{Message: message, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, status, v)
}

// requireAPIKey admits requests bearing the API key. Only the key's hash is
// held, and it is compared in constant time.
func (s *server) requireAPIKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(bearerToken(r)))
		if bearerToken(r) == "" || subtle.ConstantTimeCompare(got[:], s.apiKeySum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			writeRESTError(w, http.StatusUnauthorized, "unauthorized", "Missing or invalid API key")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// httpError is a REST error a handler returns; restFail writes it.
type httpError struct {
	status  int
	code    string
	message string
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter string
}

func (e *httpError) Error() string { return e.message }

func unprocessable(format string, args ...any) *httpError {
	return &httpError{status: http.StatusUnprocessableEntity, code: "invalid_request_parameters", message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *httpError {
	return &httpError{status: http.StatusNotFound, code: "entity_not_found", message: fmt.Sprintf(format, args...)}
}

// restFail maps err to a response, once: handler errors as themselves,
// registry validation errors as 422, errors of the projector and
// dispatcher by their backenderr kind, anything else as a logged 500.
func (s *server) restFail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var ve *registry.ValidationError
	switch {
	case errors.As(err, &he):
	case errors.As(err, &ve):
		he = unprocessable("%s", ve.Message)
	case errors.Is(err, registry.ErrOrganizationNotFound):
		he = unprocessable("organization_id does not name an existing organization")
	default:
		kind, message := backenderr.Classify(err)
		if kind == backenderr.Misconfigured {
			s.Logger.ErrorContext(r.Context(), "backend does not implement a call: the projector or dispatcher is older than the gateway or misconfigured",
				"request_id", info(r.Context()).id, "error", err)
		}
		he = backendError(kind, message)
	}
	if he == nil {
		s.Logger.ErrorContext(r.Context(), "rest request failed", "request_id", info(r.Context()).id, "error", err)
		he = &httpError{status: http.StatusInternalServerError, code: "internal_error", message: "Internal server error; request id " + info(r.Context()).id}
	}
	if he.retryAfter != "" {
		w.Header().Set("Retry-After", he.retryAfter)
	}
	writeRESTError(w, he.status, he.code, he.message)
}

// restRetryAfter is the Retry-After (seconds) of a retryable backend
// error: a read model catches up, and a backend restarts, within seconds.
const restRetryAfter = "1"

// backendError words a backend error of kind for the REST API; nil for
// Unknown, which is our own fault and restFail's logged 500. message is
// the backend's, shown only where it is written for clients.
func backendError(kind backenderr.Kind, message string) *httpError {
	var code string
	switch kind {
	case backenderr.NotFound:
		code = "entity_not_found"
	case backenderr.Invalid:
		code = "invalid_request_parameters"
	case backenderr.NotReady:
		code, message = "not_ready", "The read model has not caught up with recent writes yet; retry shortly"
	case backenderr.Unavailable:
		code, message = "service_unavailable", "A backend service is unavailable; retry shortly"
	case backenderr.Misconfigured:
		code, message = "backend_misconfigured", "A backend service does not implement this call (misconfigured deployment); retry later"
	default:
		return nil
	}
	he := &httpError{status: kind.HTTPStatus(), code: code, message: message}
	if kind.Retryable() {
		he.retryAfter = restRetryAfter
	}
	return he
}

// decodeBody reads a JSON object into v: malformed JSON is 400, a value of
// the wrong type 422, an oversized body 413.
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: "request_too_large", message: "Request body exceeds the limit"}
		}
		return &httpError{status: http.StatusBadRequest, code: "invalid_json", message: "Request body could not be read"}
	}
	return decodeJSON(data, v)
}

// decodeJSON decodes exactly one JSON object into v.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return unprocessable("%s must be of type %s", te.Field, te.Type)
		}
		return &httpError{status: http.StatusBadRequest, code: "invalid_json", message: "Request body is not valid JSON"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &httpError{status: http.StatusBadRequest, code: "invalid_json", message: "Request body has data after the JSON object"}
	}
	return nil
}

func (s *server) source(r *http.Request) registry.Source {
	return registry.Source{RequestID: info(r.Context()).id, UserAgent: r.UserAgent(), TraceContext: natsx.TraceMap(r.Context())}
}

// CreateOrganizationRequest is the body of POST /organizations.
type CreateOrganizationRequest struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
}

func (s *server) createOrganization(w http.ResponseWriter, r *http.Request) {
	var req CreateOrganizationRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	org, err := s.Registry.CreateOrganization(r.Context(), s.source(r), req.Name, req.Domains)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, workos.NewOrganization(org))
}

// CreateDirectoryRequest is the body of POST /directories.
type CreateDirectoryRequest struct {
	OrganizationID string `json:"organization_id"`
	Name           string `json:"name"`
	Type           string `json:"type"`
}

// createdDirectory is a directory with its SCIM connection details, which
// are shown this once.
type createdDirectory struct {
	workos.Directory
	SCIM scimConnection `json:"scim"`
}

type scimConnection struct {
	Endpoint    string `json:"endpoint"`
	BearerToken string `json:"bearer_token"`
}

func (s *server) createDirectory(w http.ResponseWriter, r *http.Request) {
	var req CreateDirectoryRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		s.restFail(w, r, err)
		return
	}
	nd, err := s.Registry.CreateDirectory(r.Context(), s.source(r), req.OrganizationID, req.Name, req.Type)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdDirectory{
		Directory: workos.NewDirectory(nd.Directory),
		SCIM: scimConnection{
			Endpoint:    s.PublicURL + "/scim/v2/" + nd.Directory.GetId(),
			BearerToken: nd.Token,
		},
	})
}

// list is WorkOS's list envelope.
type list[T any] struct {
	Object       string       `json:"object"`
	Data         []T          `json:"data"`
	ListMetadata listMetadata `json:"list_metadata"`
}

type listMetadata struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

func newList[T any](data []T, pi *dsyncv1.PageInfo) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Object: "list", Data: data, ListMetadata: listMetadata{Before: nullable(pi.GetBefore()), After: nullable(pi.GetAfter())}}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// parsePage reads limit, before, after and order as WorkOS defines them.
func parsePage(q url.Values) (*dsyncv1.Page, error) {
	p := &dsyncv1.Page{Limit: 10, Order: dsyncv1.Order_ORDER_DESC, Before: q.Get("before"), After: q.Get("after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, unprocessable("limit must be an integer from 1 to 100")
		}
		p.Limit = int32(n)
	}
	switch strings.ToLower(q.Get("order")) {
	case "", "desc", "normal":
	case "asc":
		p.Order = dsyncv1.Order_ORDER_ASC
	default:
		return nil, unprocessable("order must be asc, desc or normal")
	}
	if p.Before != "" && p.After != "" {
		return nil, unprocessable("before and after cannot both be set")
	}
	return p, nil
}

func (s *server) listDirectories(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := parsePage(q)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	token, err := s.Log.LastSequence(r.Context(), event.SubjectAllDirectoryEvents)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Directories.ListDirectories(r.Context(), &dsyncv1.ListDirectoriesRequest{
		OrganizationId: q.Get("organization_id"), Search: q.Get("search"), Page: page, MinSequence: token,
	})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	data := make([]workos.Directory, 0, len(resp.GetDirectories()))
	for _, d := range resp.GetDirectories() {
		data = append(data, workos.NewDirectory(d))
	}
	writeJSON(w, http.StatusOK, newList(data, resp.GetPageInfo()))
}

func (s *server) getDirectory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixDirectory) {
		s.restFail(w, r, notFound("Directory %s not found", id))
		return
	}
	info(r.Context()).directoryID = id
	token, err := s.Log.LastSequence(r.Context(), event.DirectoryEventsSubject(id))
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Directories.GetDirectory(r.Context(), &dsyncv1.GetDirectoryRequest{Id: id, MinSequence: token})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, workos.NewDirectory(resp.GetDirectory()))
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dir, group := q.Get("directory"), q.Get("group")
	page, err := parsePage(q)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	if err := checkCursors(page, event.PrefixUser); err != nil {
		s.restFail(w, r, err)
		return
	}
	var (
		users []*dsyncv1.User
		pi    *dsyncv1.PageInfo
		token uint64
	)
	switch {
	case dir != "" && group != "":
		s.restFail(w, r, unprocessable("directory and group cannot both be set"))
		return
	case group != "":
		if !event.ValidID(group, event.PrefixGroup) {
			s.restFail(w, r, unprocessable("group must be a directory group id (directory_group_…)"))
			return
		}
		if token, err = s.allDirectoriesToken(r); err != nil {
			s.restFail(w, r, err)
			return
		}
		resp, err := s.Directories.ListGroupMembers(r.Context(), &dsyncv1.ListGroupMembersRequest{GroupId: group, Page: page, MinSequence: token})
		if err != nil {
			s.restFail(w, r, err)
			return
		}
		users, pi = resp.GetUsers(), resp.GetPageInfo()
	case dir != "":
		if !event.ValidID(dir, event.PrefixDirectory) {
			s.restFail(w, r, unprocessable("directory must be a directory id (directory_…)"))
			return
		}
		info(r.Context()).directoryID = dir
		if token, err = s.directoryToken(r, dir); err != nil {
			s.restFail(w, r, err)
			return
		}
		resp, err := s.Directories.ListUsers(r.Context(), &dsyncv1.ListUsersRequest{DirectoryId: dir, Page: page, MinSequence: token})
		if err != nil {
			s.restFail(w, r, err)
			return
		}
		users, pi = resp.GetUsers(), resp.GetPageInfo()
	default:
		s.restFail(w, r, unprocessable("directory or group is required"))
		return
	}
	// The users were read at token already.
	data, err := s.withGroups(r.Context(), users, 0)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(data, pi))
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !event.ValidID(id, event.PrefixUser) {
		s.restFail(w, r, notFound("Directory user %s not found", id))
		return
	}
	// The user's directory is not known from its id, so the token covers
	// every directory.
	token, err := s.allDirectoriesToken(r)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	resp, err := s.Directories.GetUser(r.Context(), &dsyncv1.GetUserRequest{Id: id, MinSequence: token})
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	info(r.Context()).directoryID = resp.GetUser().GetDirectoryId()
	data, err := s.withGroups(r.Context(), []*dsyncv1.User{resp.GetUser()}, 0)
	if err != nil {
		s.restFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, data[0])
}
