package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const apiKeyFile = "api_key"

// loadOrCreateAPIKey returns the API key kept in dataDir, creating it on
// first start. The file is readable by its owner only: it is the operator's
// credential, like a kubeconfig.
func loadOrCreateAPIKey(dataDir string) (key string, created bool, err error) {
	path := filepath.Join(dataDir, apiKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key = strings.TrimSpace(string(b))
		if key == "" {
			return "", false, fmt.Errorf("api key file %s is empty: remove it to generate a new key", path)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read api key: %w", err)
	}
	key, err = newAPIKey()
	if err != nil {
		return "", false, err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write api key: %w", err)
	}
	return key, true, nil
}

// newAPIKey returns "sk_" and 256 random bits, WorkOS's key shape.
func newAPIKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate api key: %w", err)
	}
	return "sk_" + base64.RawURLEncoding.EncodeToString(b), nil
}
