package dialguard_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/dispatcher/internal/dialguard"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"fd00::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"100.64.0.1", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", false},
		{"240.0.0.1", false},
		{"198.18.0.1", false},
		{"2001:db8::1", false},
		{"fd00:ec2::254", false},      // AWS metadata over IPv6
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"64:ff9b::808:808", true},    // NAT64 of 8.8.8.8: IPv6-only networks need it
		{"2002:a00:1::1", false},      // 6to4 of 10.0.0.1
		{"2002:c0a8:101::1", false},   // 6to4 of 192.168.1.1
		{"2002:808:808::1", true},     // 6to4 of 8.8.8.8
	}
	devPolicy := dialguard.Policy{Allow: dialguard.Loopback}
	for _, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.ip)
			require.Equal(t, tc.want, dialguard.Policy{}.Allowed(ip))
			require.True(t, dialguard.AllowPrivate.Allowed(ip))
			require.Equal(t, tc.want || ip.Unmap().IsLoopback(), devPolicy.Allowed(ip), "dev allows loopback only")
		})
	}
}

func TestPolicyAllowNets(t *testing.T) {
	nets, err := dialguard.ParseNets(" 10.1.0.0/16, 192.168.7.7 ,,fd12::/16")
	require.NoError(t, err)
	p := dialguard.Policy{Allow: nets}
	for ip, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "10.2.0.1": false, "192.168.7.7": true, "192.168.7.8": false,
		"fd12::1": true, "fd13::1": false, "127.0.0.1": false, "8.8.8.8": true,
	} {
		require.Equal(t, want, p.Allowed(netip.MustParseAddr(ip)), ip)
	}
	for _, bad := range []string{"10.0.0.0/33", "x", "10.0.0/8", "1.2.3.4/"} {
		_, err := dialguard.ParseNets(bad)
		require.Error(t, err, bad)
	}
	none, err := dialguard.ParseNets("")
	require.NoError(t, err)
	require.Empty(t, none)
}

func FuzzParseNets(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "127.0.0.1, ::1/128", "", ",,", "::ffff:10.0.0.0/104", "1.2.3.4/40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nets, err := dialguard.ParseNets(s)
		if err != nil {
			return
		}
		for _, n := range nets {
			require.True(t, n.IsValid())
		}
	})
}

// TestDialerRefusesLoopback dials a real loopback server through a guarded
// client, via a host name, so the check must happen after resolution.
func TestDialerRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	url := "http://localhost:" + port + "/"

	for _, p := range []dialguard.Policy{{}, {Allow: dialguard.Loopback}, dialguard.AllowPrivate} {
		allow := p.AllowAll || len(p.Allow) > 0
		d := dialguard.NewDialer(p, 5*time.Second)
		client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		if allow {
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			continue
		}
		require.ErrorIs(t, err, dialguard.ErrForbiddenAddress)
	}
}

func TestValidateURL(t *testing.T) {
	tests := []struct {
		url   string
		allow bool // with dsync dev's policy: loopback allowed
		ok    bool
	}{
		{"https://example.com/hook", false, true},
		{"http://example.com:8080/hook?x=1", false, true},
		{"ftp://example.com/", false, false},
		{"example.com/hook", false, false},
		{"/hook", false, false},
		{"https://", false, false},
		{"https:///path", false, false},
		{"https://user:pass@example.com/", false, false},
		{"mailto:a@example.com", false, false},
		{"http://127.0.0.1:9000/", false, false},
		{"http://127.0.0.1:9000/", true, true},
		{"http://localhost/", false, false},
		{"http://localhost/", true, true},
		{"http://[::1]/", false, false},
		{"http://[::1]/", true, true},
		{"http://10.0.0.1/", true, false},
		{"http://169.254.169.254/latest", false, false},
		{"http://%zz", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			p := dialguard.Policy{}
			if tc.allow {
				p.Allow = dialguard.Loopback
			}
			_, err := dialguard.ValidateURL(tc.url, p)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, dialguard.ErrInvalidURL)
		})
	}
}

func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"https://example.com/", "http://127.0.0.1/", "x", "http://[::1", "https://a@b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := dialguard.ValidateURL(raw, dialguard.Policy{})
		if err == nil {
			require.Contains(t, []string{"http", "https"}, u.Scheme)
			require.NotEmpty(t, u.Hostname())
		}
	})
}
