package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// client calls the REST API.
type client struct {
	base, apiKey string
	http         *http.Client
}

// apiError is the REST API's error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// do sends a request and returns the body of a 2xx answer. Other answers
// and transport failures become *Error with the matching exit code.
func (c *client) do(ctx context.Context, method, path string, q url.Values, in any) ([]byte, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, &Error{Code: ExitUsage, Err: fmt.Errorf("bad --url %q: %w", c.base, err)}
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsync-admin")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Code: ExitUnreachable, Err: fmt.Errorf("cannot reach dsync at %s (is it running? set --url or DSYNC_URL): %w", c.base, unwrapURL(err))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &Error{Code: ExitUnreachable, Err: fmt.Errorf("read answer of %s %s: %w", method, path, err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return data, nil
	}
	var ae apiError
	_ = json.Unmarshal(data, &ae)
	msg := ae.Message
	if msg == "" {
		msg = strings.TrimSpace(string(data))
		if len(msg) > 200 || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		if c.apiKey == "" {
			return nil, &Error{Code: ExitUnauthorized, Err: errors.New("no API key: set --api-key or DSYNC_API_KEY (make run prints it)")}
		}
		return nil, &Error{Code: ExitUnauthorized, Err: errors.New("the server refused the API key (401): check --api-key or DSYNC_API_KEY")}
	case resp.StatusCode == http.StatusNotFound && ae.Code == "not_found":
		// The gateway answers an unknown route with code "not_found" and an
		// unknown object with "entity_not_found": the first means this
		// server does not have the API yet.
		return nil, &Error{Code: ExitNotAvailable, Err: fmt.Errorf("%s %s is not available in this server version", method, path)}
	case resp.StatusCode == http.StatusNotFound:
		return nil, &Error{Code: ExitNotFound, Err: fmt.Errorf("not found: %s", msg)}
	case resp.StatusCode == http.StatusMethodNotAllowed:
		return nil, &Error{Code: ExitNotAvailable, Err: fmt.Errorf("%s %s is not available in this server version", method, path)}
	case resp.StatusCode == http.StatusUnprocessableEntity, resp.StatusCode == http.StatusBadRequest:
		return nil, &Error{Code: ExitFailed, Err: fmt.Errorf("the server did not accept the request: %s", msg)}
	}
	return nil, &Error{Code: ExitFailed, Err: fmt.Errorf("%s %s failed with %d: %s", method, path, resp.StatusCode, msg)}
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// list is the REST list envelope, kept loose: commands print fields they
// know and --json prints everything.
type list struct {
	Object       string           `json:"object"`
	Data         []map[string]any `json:"data"`
	ListMetadata struct {
		Before *string `json:"before"`
		After  *string `json:"after"`
	} `json:"list_metadata"`
}

// list fetches one page, or with --all every page from the cursor on,
// reporting progress on stderr.
func (c *client) list(ctx context.Context, o *options, path string, q url.Values) (list, error) {
	if q == nil {
		q = url.Values{}
	}
	if o.limit != 0 {
		q.Set("limit", fmt.Sprint(o.limit))
	} else if o.all {
		q.Set("limit", "100")
	}
	if o.after != "" {
		q.Set("after", o.after)
	}
	if o.before != "" {
		q.Set("before", o.before)
	}
	var out list
	for page := 1; ; page++ {
		data, err := c.do(ctx, http.MethodGet, path, q, nil)
		if err != nil {
			return list{}, err
		}
		var l list
		if err := json.Unmarshal(data, &l); err != nil {
			return list{}, fmt.Errorf("decode %s: %w", path, err)
		}
		out.Object, out.ListMetadata = l.Object, l.ListMetadata
		out.Data = append(out.Data, l.Data...)
		if !o.all || l.ListMetadata.After == nil || *l.ListMetadata.After == "" {
			if o.all && page > 1 {
				fmt.Fprintf(o.stderr, "fetched %d in %d pages\n", len(out.Data), page)
			}
			return out, nil
		}
		if page%5 == 0 {
			fmt.Fprintf(o.stderr, "fetched %d…\n", len(out.Data))
		}
		q.Del("before")
		q.Set("after", *l.ListMetadata.After)
	}
}
