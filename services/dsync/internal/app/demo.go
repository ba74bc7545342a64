package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

const demoFile = "demo.json"

// Demo is the demo organization and directory `dsync dev` creates on first
// start, so a newcomer has a SCIM endpoint to paste into Okta at once.
type Demo struct {
	OrganizationID string `json:"organization_id"`
	DirectoryID    string `json:"directory_id"`
	SCIMEndpoint   string `json:"-"`
	// BearerToken is set only on the start that created the directory: the
	// token is stored as a hash and cannot be shown again.
	BearerToken string `json:"-"`
}

// ensureDemo creates the demo through the REST API on first start — the
// same path a user takes — and remembers its ids in the data dir.
func ensureDemo(ctx context.Context, dataDir, baseURL, publicURL, apiKey string) (*Demo, error) {
	path := filepath.Join(dataDir, demoFile)
	if b, err := os.ReadFile(path); err == nil {
		d := &Demo{}
		if err := json.Unmarshal(b, d); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		// The address may differ from the last start's.
		d.SCIMEndpoint = publicURL + "/scim/v2/" + d.DirectoryID
		return d, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}

	client := &apiClient{base: baseURL, key: apiKey, http: &http.Client{Timeout: 10 * time.Second}}
	var org struct {
		ID string `json:"id"`
	}
	if err := client.post(ctx, "/organizations", map[string]any{
		"name": "Demo Organization", "domains": []string{"example.com"},
	}, &org); err != nil {
		return nil, err
	}
	var dir struct {
		ID   string `json:"id"`
		SCIM struct {
			Endpoint    string `json:"endpoint"`
			BearerToken string `json:"bearer_token"`
		} `json:"scim"`
	}
	if err := client.post(ctx, "/directories", map[string]any{
		"organization_id": org.ID, "name": "Demo Okta directory", "type": "okta scim v2.0",
	}, &dir); err != nil {
		return nil, err
	}
	d := &Demo{OrganizationID: org.ID, DirectoryID: dir.ID, SCIMEndpoint: dir.SCIM.Endpoint, BearerToken: dir.SCIM.BearerToken}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return d, nil
}

type apiClient struct {
	base, key string
	http      *http.Client
}

func (c *apiClient) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(respBody))
	}
	if err := json.Unmarshal(respBody, out); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", path, err)
	}
	return nil
}
