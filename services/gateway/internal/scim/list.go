package scim

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
)

// MaxResults is the largest page a list answers (ServiceProviderConfig
// filter.maxResults); a larger count is capped, an absent count means it.
const MaxResults = 200

// ListQuery is a SCIM list request (RFC 7644 §3.4.2, §3.4.3), from a query
// string or a POST .search body.
type ListQuery struct {
	Filter         string
	StartIndex     int // 1-based
	Count          int // 0: the total only
	SortBy         string
	SortDescending bool
	Attributes     []string
	Excluded       []string
}

// ParseListQuery reads a list request's query parameters; names are
// matched without regard to case. An unparsable filter is 400
// invalidFilter; a non-integer startIndex or count is 400 invalidValue.
func ParseListQuery(q url.Values) (ListQuery, error) {
	get := func(name string) string {
		for k, v := range q {
			if strings.EqualFold(k, name) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	lq := ListQuery{
		Filter: strings.TrimSpace(get("filter")), SortBy: strings.TrimSpace(get("sortBy")),
		Attributes: splitList(get("attributes")), Excluded: splitList(get("excludedAttributes")),
	}
	var err error
	if lq.StartIndex, err = intParam("startIndex", get("startIndex"), 1); err != nil {
		return ListQuery{}, err
	}
	if lq.Count, err = intParam("count", get("count"), MaxResults); err != nil {
		return ListQuery{}, err
	}
	lq.SortDescending = strings.EqualFold(strings.TrimSpace(get("sortOrder")), "descending")
	return lq.normalize()
}

// ParseSearchRequest reads a POST /.search body (RFC 7644 §3.4.3).
func ParseSearchRequest(body []byte) (ListQuery, error) {
	m, err := decodeObject(body)
	if err != nil {
		return ListQuery{}, err
	}
	o := object(m)
	var lq ListQuery
	if lq.Filter, err = o.stringAttr("filter"); err != nil {
		return ListQuery{}, err
	}
	if lq.SortBy, err = o.stringAttr("sortBy"); err != nil {
		return ListQuery{}, err
	}
	order, err := o.stringAttr("sortOrder")
	if err != nil {
		return ListQuery{}, err
	}
	lq.SortDescending = strings.EqualFold(order, "descending")
	for _, a := range []struct {
		name string
		dst  *[]string
	}{{"attributes", &lq.Attributes}, {"excludedAttributes", &lq.Excluded}} {
		for _, v := range o.listAttr(a.name) {
			s, err := scalarString(v)
			if err != nil {
				return ListQuery{}, invalidValue("%s must be a list of strings", a.name)
			}
			*a.dst = append(*a.dst, splitList(s)...)
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
		def  int
	}{{"startIndex", &lq.StartIndex, 1}, {"count", &lq.Count, MaxResults}} {
		s, err := o.stringAttr(p.name)
		if err != nil {
			return ListQuery{}, invalidValue("%s must be an integer", p.name)
		}
		if *p.dst, err = intParam(p.name, s, p.def); err != nil {
			return ListQuery{}, err
		}
	}
	return lq.normalize()
}

func (lq ListQuery) normalize() (ListQuery, error) {
	lq.Filter = strings.TrimSpace(lq.Filter)
	if lq.Filter != "" {
		if _, err := filter.Parse(lq.Filter); err != nil {
			return ListQuery{}, errorf(StatusBadRequest, TypeInvalidFilter, "Invalid filter %q: %v", lq.Filter, err)
		}
	}
	// RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
	lq.StartIndex = max(lq.StartIndex, 1)
	lq.Count = min(max(lq.Count, 0), MaxResults)
	return lq, nil
}

func intParam(name, v string, def int) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		if ne := (*strconv.NumError)(nil); errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			if strings.HasPrefix(v, "-") {
				return 0, nil
			}
			return MaxResults, nil
		}
		return 0, invalidValue("%s must be an integer", name)
	}
	return int(max(min(n, 1<<31-1), -1<<31)), nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Excludes reports whether the query leaves attribute name (a top-level
// attribute such as "members") out of the response.
func (lq ListQuery) Excludes(name string) bool {
	for _, e := range lq.Excluded {
		if attrKey(e) == strings.ToLower(name) {
			return true
		}
	}
	if len(lq.Attributes) == 0 {
		return false
	}
	for _, a := range lq.Attributes {
		k := attrKey(a)
		if k == strings.ToLower(name) || strings.HasPrefix(k, strings.ToLower(name)+".") {
			return false
		}
	}
	return true
}

// ListResponse is the SCIM ListResponse message.
type ListResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int64    `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// NewListResponse wraps one page of resources.
func NewListResponse(total int64, startIndex int, resources []any) ListResponse {
	if resources == nil {
		resources = []any{}
	}
	return ListResponse{
		Schemas: []string{SchemaListResp}, TotalResults: total, StartIndex: startIndex,
		ItemsPerPage: len(resources), Resources: resources,
	}
}

// alwaysReturned are attributes no attributes/excludedAttributes removes.
var alwaysReturned = []string{"id", "schemas"}

// Project applies attributes/excludedAttributes (RFC 7644 §3.4.2.5) to a
// rendered resource. Paths are matched without regard to case, may be
// URN-qualified ("urn:…:enterprise:2.0:User:department") and may name a
// sub-attribute ("name.givenName"). id and schemas are always returned.
// With neither list, v is returned as is.
func Project(v any, attributes, excluded []string) (any, error) {
	if len(attributes) == 0 && len(excluded) == 0 {
		return v, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var full map[string]any
	if err := json.Unmarshal(data, &full); err != nil {
		return nil, err
	}
	// Extension URNs are keys of their own in the rendered JSON.
	var urns []string
	for k := range full {
		if len(k) > 4 && strings.EqualFold(k[:4], "urn:") {
			urns = append(urns, k)
		}
	}
	if len(attributes) > 0 {
		out := map[string]any{}
		for _, k := range alwaysReturned {
			if val, ok := full[k]; ok {
				out[k] = val
			}
		}
		for _, a := range attributes {
			copyPath(out, full, splitPath(a, urns))
		}
		return out, nil
	}
	for _, e := range excluded {
		p := splitPath(e, urns)
		if len(p) == 1 && slices.Contains(alwaysReturned, strings.ToLower(p[0])) {
			continue
		}
		deletePath(full, p)
	}
	return full, nil
}

// splitPath turns an attribute path into the keys of the rendered JSON:
// the enterprise URN and the extension URNs rendered (urns) are keys of
// their own, the core URNs are dropped.
func splitPath(path string, urns []string) []string {
	path = strings.TrimSpace(path)
	lp := strings.ToLower(path)
	for _, u := range append([]string{SchemaEnterprise}, urns...) {
		if strings.HasPrefix(lp, strings.ToLower(u)+":") {
			return append([]string{u}, strings.Split(path[len(u)+1:], ".")...)
		}
		if strings.EqualFold(path, u) {
			return []string{u}
		}
	}
	for _, u := range []string{SchemaUser, SchemaGroup} {
		if strings.HasPrefix(lp, strings.ToLower(u)+":") {
			path = path[len(u)+1:]
			break
		}
	}
	return strings.Split(path, ".")
}

func findKey(m map[string]any, name string) (string, bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

func copyPath(dst, src map[string]any, path []string) {
	k, ok := findKey(src, path[0])
	if !ok {
		return
	}
	if len(path) == 1 {
		dst[k] = src[k]
		return
	}
	switch t := src[k].(type) {
	case map[string]any:
		sub, _ := dst[k].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
		}
		copyPath(sub, t, path[1:])
		dst[k] = sub
	case []any:
		prev, _ := dst[k].([]any)
		items := make([]any, len(t))
		for i, it := range t {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			var sub map[string]any
			if i < len(prev) {
				sub, _ = prev[i].(map[string]any)
			}
			if sub == nil {
				sub = map[string]any{}
			}
			copyPath(sub, m, path[1:])
			items[i] = sub
		}
		dst[k] = items
	}
}

func deletePath(m map[string]any, path []string) {
	k, ok := findKey(m, path[0])
	if !ok {
		return
	}
	if len(path) == 1 {
		delete(m, k)
		return
	}
	switch t := m[k].(type) {
	case map[string]any:
		deletePath(t, path[1:])
	case []any:
		for _, it := range t {
			if sub, ok := it.(map[string]any); ok {
				deletePath(sub, path[1:])
			}
		}
	}
}
