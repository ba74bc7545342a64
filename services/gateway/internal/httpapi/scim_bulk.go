package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

// bulkRequest is the BulkRequest message (RFC 7644 §3.7).
type bulkRequest struct {
	FailOnErrors int             `json:"failOnErrors"`
	Operations   []bulkOperation `json:"Operations"`
}

type bulkOperation struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId,omitempty"`
	Version string          `json:"version,omitempty"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type bulkResult struct {
	Method   string          `json:"method"`
	BulkID   string          `json:"bulkId,omitempty"`
	Version  string          `json:"version,omitempty"`
	Location string          `json:"location,omitempty"`
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response,omitempty"`
}

type bulkResponse struct {
	Schemas    []string     `json:"schemas"`
	Operations []bulkResult `json:"Operations"`
}

// bufferedResponse collects the answer of one bulk operation.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// scimBulk runs a BulkRequest's operations in order through the same
// handlers as single requests, so each behaves (and is limited) exactly
// like its standalone form. "bulkId:<id>" references in paths and data are
// replaced by the ids of resources created earlier in the request; an
// unresolved reference fails its operation with 409. Processing stops once
// failOnErrors operations have failed.
func (s *server) scimBulk(w http.ResponseWriter, r *http.Request, call scim.Call, _ string) {
	body, ok := s.readSCIMBody(w, r)
	if !ok {
		return
	}
	var req bulkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		writeSCIMError(w, scim.InvalidSyntax("Request body is not a valid BulkRequest: "+err.Error()))
		return
	}
	if len(req.Operations) > scim.BulkMaxOperations {
		writeSCIMError(w, &scim.Error{Status: http.StatusRequestEntityTooLarge, ScimType: scim.TypeTooMany,
			Detail: "A bulk request may hold at most " + strconv.Itoa(scim.BulkMaxOperations) + " operations"})
		return
	}
	ids := map[string]string{}
	resp := bulkResponse{Schemas: []string{scim.SchemaBulkResp}, Operations: []bulkResult{}}
	failures := 0
	for _, op := range req.Operations {
		if req.FailOnErrors > 0 && failures >= req.FailOnErrors {
			break
		}
		res := s.bulkOne(r, call, op, ids)
		if n, _ := strconv.Atoi(res.Status); n >= 400 {
			failures++
		}
		resp.Operations = append(resp.Operations, res)
	}
	writeSCIM(w, http.StatusOK, resp)
}

func (s *server) bulkOne(r *http.Request, call scim.Call, op bulkOperation, ids map[string]string) bulkResult {
	method := strings.ToUpper(strings.TrimSpace(op.Method))
	res := bulkResult{Method: method, BulkID: op.BulkID}
	fail := func(e *scim.Error) bulkResult {
		res.Status = strconv.Itoa(e.Status)
		res.Response, _ = json.Marshal(scim.RenderError(e))
		return res
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fail(scim.InvalidSyntax("Bulk operation method must be POST, PUT, PATCH or DELETE"))
	}
	if method == http.MethodPost && op.BulkID == "" {
		return fail(scim.InvalidSyntax("A bulk POST needs a bulkId"))
	}
	path, ok := resolveBulkIDs(op.Path, ids)
	if !ok {
		return fail(&scim.Error{Status: http.StatusConflict, ScimType: scim.TypeInvalidValue, Detail: "Unresolved bulkId reference in path " + op.Path})
	}
	first := strings.ToLower(strings.Trim(strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)[0], " "))
	if first != "users" && first != "groups" {
		return fail(&scim.Error{Status: http.StatusBadRequest, ScimType: scim.TypeInvalidPath, Detail: "Bulk operations apply to /Users and /Groups only"})
	}
	var data []byte
	if len(op.Data) > 0 && method != http.MethodDelete {
		var v any
		if err := json.Unmarshal(op.Data, &v); err != nil {
			return fail(scim.InvalidSyntax("Bulk operation data is not valid JSON"))
		}
		v, ok = resolveBulkData(v, ids)
		if !ok {
			return fail(&scim.Error{Status: http.StatusConflict, ScimType: scim.TypeInvalidValue, Detail: "Unresolved bulkId reference in data"})
		}
		data, _ = json.Marshal(v)
	}
	sub := r.Clone(r.Context())
	sub.Method = method
	sub.URL.Path = "/scim/v2/" + call.Directory.GetId() + path
	sub.URL.RawQuery = ""
	sub.Body = io.NopCloser(bytes.NewReader(data))
	sub.ContentLength = int64(len(data))
	sub.Header = http.Header{"Content-Type": {scimContentType}}
	if op.Version != "" {
		sub.Header.Set("If-Match", op.Version)
	}
	rec := &bufferedResponse{header: http.Header{}}
	s.routeSCIM(rec, sub, call, path)
	res.Status = strconv.Itoa(rec.status)
	res.Version = rec.header.Get("ETag")
	res.Location = rec.header.Get("Location")
	if rec.status >= 400 {
		res.Response = json.RawMessage(bytes.TrimSpace(rec.body.Bytes()))
		return res
	}
	if res.Location == "" && method != http.MethodDelete {
		res.Location = s.scimBase(call) + path
	}
	if method == http.MethodPost {
		var created struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(rec.body.Bytes(), &created) == nil && created.ID != "" {
			ids[op.BulkID] = created.ID
		}
	}
	return res
}

// resolveBulkIDs replaces "bulkId:<id>" segments of a path.
func resolveBulkIDs(path string, ids map[string]string) (string, bool) {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if ref, ok := strings.CutPrefix(seg, "bulkId:"); ok {
			id, found := ids[ref]
			if !found {
				return "", false
			}
			segs[i] = id
		}
	}
	return strings.Join(segs, "/"), true
}

// resolveBulkData replaces every string "bulkId:<id>" in a decoded body.
func resolveBulkData(v any, ids map[string]string) (any, bool) {
	switch t := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(t, "bulkId:"); ok {
			id, found := ids[ref]
			return id, found
		}
	case map[string]any:
		for k, e := range t {
			r, ok := resolveBulkData(e, ids)
			if !ok {
				return nil, false
			}
			t[k] = r
		}
	case []any:
		for i, e := range t {
			r, ok := resolveBulkData(e, ids)
			if !ok {
				return nil, false
			}
			t[i] = r
		}
	}
	return v, true
}
