package scim

import "strings"

// Providers are the IdP dialects recorded in an event's source.
const (
	ProviderOkta      = "okta"
	ProviderEntra     = "entra"
	ProviderOneLogin  = "onelogin"
	ProviderJumpCloud = "jumpcloud"
	ProviderGeneric   = "generic"
)

// DetectProvider names the IdP behind a request: from its User-Agent when
// that says so (Okta sends "Okta SCIM Client 1.0.0"), else from the
// directory's WorkOS type, since Entra and OneLogin may send no User-Agent.
func DetectProvider(userAgent, directoryType string) string {
	ua := strings.ToLower(userAgent)
	switch {
	case strings.Contains(ua, "okta"):
		return ProviderOkta
	case strings.Contains(ua, "azure"), strings.Contains(ua, "microsoft"), strings.Contains(ua, "entra"):
		return ProviderEntra
	case strings.Contains(ua, "onelogin"):
		return ProviderOneLogin
	case strings.Contains(ua, "jumpcloud"):
		return ProviderJumpCloud
	}
	switch t := strings.ToLower(directoryType); {
	case strings.HasPrefix(t, "okta"):
		return ProviderOkta
	case strings.HasPrefix(t, "azure"):
		return ProviderEntra
	case strings.HasPrefix(t, "onelogin"):
		return ProviderOneLogin
	case strings.HasPrefix(t, "jumpcloud"):
		return ProviderJumpCloud
	}
	return ProviderGeneric
}
