package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/services/gateway/internal/backenderr"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

const scimContentType = "application/scim+json"

// scimRequestTimeout bounds one SCIM request: past it the client gets 503
// with Retry-After, never a hang.
const scimRequestTimeout = 30 * time.Second

// retryAfterSeconds is the Retry-After of a 503 (paused directory,
// deadline, contention).
const retryAfterSeconds = "30"

// scimHandler handles one SCIM route for an authenticated directory. id is
// the resource id segment, "" for collection routes.
type scimHandler func(w http.ResponseWriter, r *http.Request, call scim.Call, id string)

// scimRoute is one resource path: its first segment (matched without
// regard to case, as IdPs vary) and its handlers by method, for the
// collection and for one resource.
type scimRoute struct {
	collection map[string]scimHandler
	resource   map[string]scimHandler
}

func (s *server) scimRoutes() map[string]scimRoute {
	return map[string]scimRoute{
		"users": {
			collection: map[string]scimHandler{http.MethodPost: s.scimCreateUser, http.MethodGet: s.scimListUsers},
			resource: map[string]scimHandler{
				http.MethodGet: s.scimGetUser, http.MethodPut: s.scimReplaceUser, http.MethodPatch: s.scimPatchUser,
				http.MethodDelete: s.scimDeleteUser, http.MethodPost: s.scimSearchUsers,
			},
		},
		"groups": {
			collection: map[string]scimHandler{http.MethodPost: s.scimCreateGroup, http.MethodGet: s.scimListGroups},
			resource: map[string]scimHandler{
				http.MethodGet: s.scimGetGroup, http.MethodPut: s.scimReplaceGroup, http.MethodPatch: s.scimPatchGroup,
				http.MethodDelete: s.scimDeleteGroup, http.MethodPost: s.scimSearchGroups,
			},
		},
		"bulk":                  {collection: map[string]scimHandler{http.MethodPost: s.scimBulk}},
		"serviceproviderconfig": {collection: map[string]scimHandler{http.MethodGet: s.scimServiceProviderConfig}},
		"resourcetypes": {
			collection: map[string]scimHandler{http.MethodGet: s.scimResourceTypes},
			resource:   map[string]scimHandler{http.MethodGet: s.scimResourceType},
		},
		"schemas": {
			collection: map[string]scimHandler{http.MethodGet: s.scimSchemas},
			resource:   map[string]scimHandler{http.MethodGet: s.scimSchema},
		},
	}
}

// serveSCIM authenticates the directory, applies its rate limit, then
// routes. Authentication comes first so that an unauthenticated caller
// learns nothing, not even which paths exist.
func (s *server) serveSCIM(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), scimRequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	rest, ok := strings.CutPrefix(r.URL.Path, "/scim/v2/")
	if !ok {
		writeSCIMError(w, scim.NotFound(r.URL.Path))
		return
	}
	dirID, rest, _ := strings.Cut(rest, "/")
	if event.ValidID(dirID, event.PrefixDirectory) {
		info(r.Context()).directoryID = dirID
	}
	dir, err := s.SCIM.Authenticate(r.Context(), dirID, bearerToken(r))
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	if wait, ok := s.scimLimits.allow(dir); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeSCIMError(w, &scim.Error{Status: http.StatusTooManyRequests, Detail: "Rate limit exceeded for this directory; retry after " + strconv.Itoa(wait) + " s"})
		return
	}
	call := scim.Call{
		Directory:    dir,
		RequestID:    info(r.Context()).id,
		UserAgent:    r.UserAgent(),
		TraceContext: natsx.TraceMap(r.Context()),
	}
	s.routeSCIM(w, r, call, rest)
}

// routeSCIM dispatches an authenticated request on its path below the
// directory's base URL. Bulk operations come through here too.
func (s *server) routeSCIM(w http.ResponseWriter, r *http.Request, call scim.Call, rest string) {
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	route, ok := s.scimRouter[strings.ToLower(segs[0])]
	var handlers map[string]scimHandler
	id := ""
	switch {
	case !ok || len(segs) > 2:
	case len(segs) == 1:
		handlers = route.collection
	default:
		handlers, id = route.resource, segs[1]
	}
	if handlers == nil {
		writeSCIMError(w, &scim.Error{Status: http.StatusNotFound, Detail: "No SCIM endpoint at " + r.URL.Path})
		return
	}
	h, ok := handlers[r.Method]
	if ok && r.Method == http.MethodPost && id != "" && id != ".search" {
		ok = false
	}
	if !ok {
		methods := make([]string, 0, len(handlers))
		for m := range handlers {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeSCIMError(w, &scim.Error{Status: http.StatusMethodNotAllowed, Detail: "Method " + r.Method + " is not allowed on " + r.URL.Path})
		return
	}
	h(w, r, call, id)
}

// base is the directory's SCIM base URL.
func (s *server) scimBase(call scim.Call) string {
	return s.PublicURL + "/scim/v2/" + call.Directory.GetId()
}

// readSCIMBody reads a JSON request body within the size limit, answering
// the error itself when it cannot.
func (s *server) readSCIMBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != scimContentType && mt != "application/json") {
			writeSCIMError(w, &scim.Error{Status: http.StatusUnsupportedMediaType, Detail: "Content-Type must be application/scim+json or application/json"})
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeSCIMError(w, &scim.Error{Status: http.StatusRequestEntityTooLarge, Detail: "Request body exceeds the limit of " + strconv.FormatInt(s.MaxBodyBytes, 10) + " bytes"})
			return nil, false
		}
		writeSCIMError(w, scim.InvalidSyntax("Request body could not be read"))
		return nil, false
	}
	return body, true
}

// scimFail answers err: a *scim.Error as itself, a deadline or an
// unavailable read model as a retryable 503, a read-model call the
// projector does not implement as a logged 503 (the projector implements
// every DirectoryService RPC, so Unimplemented means the gateway talks to
// an older projector or to something else: a deployment error, not the
// client's), anything else as a logged 500.
func (s *server) scimFail(w http.ResponseWriter, r *http.Request, err error) {
	var se *scim.Error
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", retryAfterSeconds)
		}
		writeSCIMError(w, se)
		return
	}
	// SCIM reads resources from the event log and asks the read model only
	// to search, with a filter the gateway has already parsed: only what
	// the read model says about its own state is the client's to see. Its
	// other answers (NotFound, Invalid) mean the gateway asked wrongly, a
	// logged 500.
	kind, _ := backenderr.Classify(err)
	var detail string
	switch kind {
	case backenderr.Misconfigured:
		s.Logger.ErrorContext(r.Context(), "read model does not implement a DirectoryService call: the projector is older than the gateway or misconfigured",
			"request_id", info(r.Context()).id, "error", err)
		detail = "The directory's read model is misconfigured (a backend call is not implemented); request id " + info(r.Context()).id
	case backenderr.NotReady, backenderr.Unavailable:
		detail = "The directory's read model is catching up; retry later"
	}
	if detail != "" {
		if kind.Retryable() {
			w.Header().Set("Retry-After", retryAfterSeconds)
		}
		writeSCIMError(w, &scim.Error{Status: kind.HTTPStatus(), Detail: detail})
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeSCIMError(w, &scim.Error{Status: http.StatusServiceUnavailable, Detail: "The request did not complete in time; retry later"})
		return
	}
	s.Logger.ErrorContext(r.Context(), "scim request failed", "request_id", info(r.Context()).id, "error", err)
	writeSCIMError(w, &scim.Error{Status: http.StatusInternalServerError, Detail: "Internal server error; request id " + info(r.Context()).id})
}

func writeSCIMError(w http.ResponseWriter, e *scim.Error) {
	writeSCIM(w, e.Status, scim.RenderError(e))
}

func writeSCIM(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", scimContentType)
	writeJSONBody(w, status, v)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only our own response types reach here; they always marshal.
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// bearerToken returns the credentials of an "Authorization: Bearer …"
// header (scheme matched without regard to case), or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// precondition is the request's If-Match.
func precondition(r *http.Request) scim.Precondition {
	return scim.Precondition(strings.TrimSpace(r.Header.Get("If-Match")))
}

// writeResource answers a resource with its ETag, or 304 when a GET's
// If-None-Match names its version.
func writeResource(w http.ResponseWriter, r *http.Request, status int, version string, v any) {
	if version != "" {
		w.Header().Set("ETag", version)
		if r.Method == http.MethodGet && scim.NoneMatch(r.Header.Get("If-None-Match"), version) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	writeSCIM(w, status, v)
}

// projected applies the request's attributes/excludedAttributes to v.
func projected(r *http.Request, v any) (any, error) {
	lq, err := scim.ParseListQuery(withoutFilter(r))
	if err != nil {
		return nil, err
	}
	return scim.Project(v, lq.Attributes, lq.Excluded)
}

// withoutFilter returns the query parameters that shape a single resource
// (a filter on a resource GET is meaningless and not validated).
func withoutFilter(r *http.Request) map[string][]string {
	q := r.URL.Query()
	for k := range q {
		if !strings.EqualFold(k, "attributes") && !strings.EqualFold(k, "excludedAttributes") {
			delete(q, k)
		}
	}
	return q
}
