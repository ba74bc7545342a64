// Package dialguard keeps webhook requests away from the operator's own
// network: loopback, private, link-local, CGNAT, multicast and reserved
// addresses are refused unless the operator allows them (Policy).
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

// Policy is what the operator allows webhooks to reach. The zero Policy
// allows public addresses only.
type Policy struct {
	// AllowAll allows every address, refused ranges included.
	AllowAll bool
	// Allow lists networks that are allowed although they are in a refused
	// range: 127.0.0.0/8 and ::1/128 in dsync dev, or a private network of
	// the operator's own receivers.
	Allow []netip.Prefix
}

// AllowPrivate is the policy that allows every address (tests, and
// DSYNC_ALLOW_PRIVATE_WEBHOOKS).
var AllowPrivate = Policy{AllowAll: true}

// Loopback lists the loopback networks, which dsync dev allows.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// ParseNets parses a comma-separated list of CIDR networks or single IP
// addresses (blanks around items are ignored; an empty list is nil).
func ParseNets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			ip, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("network %q: want a CIDR such as 10.0.0.0/8 or an IP address", item)
			}
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("network %q: want a CIDR such as 10.0.0.0/8 or an IP address", item)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Allowed reports whether a webhook may connect to ip under p.
func (p Policy) Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if p.AllowAll || !Refused(ip) {
		return true
	}
	for _, n := range p.Allow {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Refused reports whether ip is in a range webhooks are kept away from:
// loopback, private, link-local (cloud metadata services among them),
// CGNAT, multicast, unspecified and other reserved or special-purpose
// addresses.
func Refused(ip netip.Addr) bool {
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
		return true
	}
	for _, p := range extraRefused {
		if p.Contains(ip) {
			return true
		}
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return Refused(v4)
	}
	return false
}

// Translation prefixes whose addresses carry an IPv4 address a gateway on
// the path may connect to: the well-known NAT64 prefix (RFC 6052) and 6to4
// (RFC 3056).
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address stands for:
// 64:ff9b::a9fe:a9fe reaches 169.254.169.254 on a network that translates
// it, so it is judged by that address (a public one stays allowed, as
// IPv6-only networks need).
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case !ip.Is6():
		return netip.Addr{}, false
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// extraRefused are the special-purpose ranges (RFC 6890 and successors)
// that net/netip has no predicate for.
var extraRefused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// Control returns a net.Dialer Control function that refuses the addresses
// p does not allow. It sees the resolved address of each connection attempt.
func (p Policy) Control() func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		if !p.Allowed(ap.Addr()) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
		}
		return nil
	}
}

// NewDialer returns a dialer with the guard for p installed.
func NewDialer(p Policy, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control:   p.Control(),
	}
}

// ValidateURL checks a webhook URL as an endpoint is registered: absolute,
// http or https, with a host, no user info (credentials in URLs end up in
// logs). It does not resolve the host; the dial guard decides at connect time.
// Literal IP hosts that p refuses, and "localhost" unless p allows loopback,
// are rejected early so the mistake surfaces at registration.
func ValidateURL(raw string, p Policy) (*url.URL, error) {
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
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		host = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil && !p.Allowed(ip) {
		return nil, fmt.Errorf("%w: the target address is not allowed (private, loopback or reserved)", ErrInvalidURL)
	}
	return u, nil
}
