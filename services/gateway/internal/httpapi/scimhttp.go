package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

const scimContentType = "application/scim+json"

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
	notYet := s.scimNotImplemented
	return map[string]scimRoute{
		"users": {
			collection: map[string]scimHandler{http.MethodPost: s.scimCreateUser, http.MethodGet: notYet},
			resource: map[string]scimHandler{
				http.MethodGet: s.scimGetUser, http.MethodPut: notYet, http.MethodPatch: notYet, http.MethodDelete: notYet,
			},
		},
		"groups": {
			collection: map[string]scimHandler{http.MethodPost: notYet, http.MethodGet: notYet},
			resource: map[string]scimHandler{
				http.MethodGet: notYet, http.MethodPut: notYet, http.MethodPatch: notYet, http.MethodDelete: notYet,
			},
		},
		"serviceproviderconfig": {collection: map[string]scimHandler{http.MethodGet: notYet}},
		"resourcetypes":         {collection: map[string]scimHandler{http.MethodGet: notYet}, resource: map[string]scimHandler{http.MethodGet: notYet}},
		"schemas":               {collection: map[string]scimHandler{http.MethodGet: notYet}, resource: map[string]scimHandler{http.MethodGet: notYet}},
	}
}

// serveSCIM authenticates the directory, then routes. Authentication comes
// first so that an unauthenticated caller learns nothing, not even which
// paths exist.
func (s *server) serveSCIM(w http.ResponseWriter, r *http.Request) {
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
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
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
	call := scim.Call{
		Directory:    dir,
		RequestID:    info(r.Context()).id,
		UserAgent:    r.UserAgent(),
		TraceContext: natsx.TraceMap(r.Context()),
	}
	h(w, r, call, id)
}

func (s *server) scimNotImplemented(w http.ResponseWriter, r *http.Request, _ scim.Call, _ string) {
	writeSCIMError(w, &scim.Error{Status: http.StatusNotImplemented, Detail: r.Method + " " + r.URL.Path + " is not implemented yet"})
}

func (s *server) scimCreateUser(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	u, err := s.SCIM.CreateUser(r.Context(), call, body)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	w.Header().Set("Location", u.Meta.Location)
	w.Header().Set("ETag", u.Meta.Version)
	writeSCIM(w, http.StatusCreated, u)
}

func (s *server) scimGetUser(w http.ResponseWriter, r *http.Request, call scim.Call, id string) {
	u, err := s.SCIM.GetUser(r.Context(), call, id)
	if err != nil {
		s.scimFail(w, r, err)
		return
	}
	w.Header().Set("ETag", u.Meta.Version)
	writeSCIM(w, http.StatusOK, u)
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
			writeSCIMError(w, &scim.Error{Status: http.StatusRequestEntityTooLarge, Detail: "Request body exceeds the limit"})
			return nil, false
		}
		writeSCIMError(w, scim.InvalidSyntax("Request body could not be read"))
		return nil, false
	}
	return body, true
}

// scimFail answers err: a *scim.Error as itself, anything else as a logged 500.
func (s *server) scimFail(w http.ResponseWriter, r *http.Request, err error) {
	var se *scim.Error
	if errors.As(err, &se) {
		if se.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
		}
		writeSCIMError(w, se)
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
