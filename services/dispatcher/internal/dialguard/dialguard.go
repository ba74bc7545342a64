// Package dialguard keeps webhook requests away from the operator's own
// network: loopback, private, link-local, unspecified and multicast
// addresses are refused unless the operator allows them.
//
// The check runs in the dialer's Control hook, on the IP address actually
// being connected to after DNS resolution. Checking the URL's host name up
// front is not enough: a name can resolve to a public address when validated
// and to 127.0.0.1 when dialled (DNS rebinding), and redirects can point
// anywhere.
package dialguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned (wrapped) when a connection to a refused
// address is attempted.
var ErrForbiddenAddress = errors.New("webhook target address is not allowed")

// ErrInvalidURL is returned by ValidateURL.
var ErrInvalidURL = errors.New("invalid webhook url")

// Allowed reports whether a webhook may connect to ip. With allowPrivate
// every address is allowed.
func Allowed(ip netip.Addr, allowPrivate bool) bool {
	if allowPrivate {
		return true
	}
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(),
		ip.IsLoopback(),
		ip.IsPrivate(), // RFC 1918, fc00::/7
		ip.IsLinkLocalUnicast(),
		ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(),
		ip.IsMulticast(),
		ip.IsUnspecified():
		return false
	}
	// Carrier-grade NAT (RFC 6598) and the IPv4 "this network" block are
	// not reachable public addresses either.
	for _, p := range extraRefused {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var extraRefused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// Control returns a net.Dialer Control function that refuses forbidden
// addresses. It sees the resolved address of each connection attempt.
func Control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		if !Allowed(ap.Addr(), allowPrivate) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
		}
		return nil
	}
}

// NewDialer returns a dialer with the guard installed.
func NewDialer(allowPrivate bool, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control:   Control(allowPrivate),
	}
}

// ValidateURL checks a webhook URL as an endpoint is registered: absolute,
// http or https, with a host, no user info (credentials in URLs end up in
// logs). It does not resolve the host; the dial guard decides at connect time.
// When allowPrivate is false, literal IP hosts that the guard would refuse and
// "localhost" are rejected early so the mistake surfaces at registration.
func ValidateURL(raw string, allowPrivate bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: scheme must be http or https", ErrInvalidURL)
	}
	if !u.IsAbs() || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: must be absolute with a host", ErrInvalidURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: must not contain credentials", ErrInvalidURL)
	}
	if !allowPrivate {
		host := strings.ToLower(u.Hostname())
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return nil, fmt.Errorf("%w: private targets are not allowed", ErrInvalidURL)
		}
		if ip, err := netip.ParseAddr(host); err == nil && !Allowed(ip, false) {
			return nil, fmt.Errorf("%w: private targets are not allowed", ErrInvalidURL)
		}
	}
	return u, nil
}
