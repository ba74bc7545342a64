package registry_test

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
	dsyncv1 "github.com/dsync-dev/dsync/proto/dsync/v1"
	"github.com/dsync-dev/dsync/services/gateway/internal/eventlog"
	"github.com/dsync-dev/dsync/services/gateway/internal/registry"
)

func TestCreateOrganizationAndDirectory(t *testing.T) {
	js, _ := natstest.Run(t).JetStream(t)
	log := eventlog.New(js)
	r := registry.New(log, event.NewIDs(), nil)
	ctx := t.Context()

	org, err := r.CreateOrganization(ctx, registry.Source{RequestID: "req_1"}, "  Acme ", []string{"Acme.COM", "acme.com", "b.io"})
	require.NoError(t, err)
	require.Equal(t, "Acme", org.GetName())
	require.Equal(t, []string{"acme.com", "b.io"}, org.GetDomains())

	nd, err := r.CreateDirectory(ctx, registry.Source{}, org.GetId(), "Okta", "Okta SCIM v2.0")
	require.NoError(t, err)
	d := nd.Directory
	require.Equal(t, "okta scim v2.0", d.GetType())
	require.Equal(t, "acme.com", d.GetDomain())
	require.Equal(t, dsyncv1.DirectoryState_DIRECTORY_STATE_ACTIVE, d.GetState())
	sum := sha256.Sum256([]byte(nd.Token))
	require.Equal(t, sum[:], d.GetScimTokenSha256())

	ev, _, err := log.Last(ctx, event.DirectorySubject(d.GetId()))
	require.NoError(t, err)
	require.Equal(t, dsyncv1.EventType_EVENT_TYPE_DIRECTORY_ACTIVATED, ev.GetType())
	require.Equal(t, d.GetId(), ev.GetDirectoryId())
	require.Equal(t, org.GetId(), ev.GetOrganizationId())

	nd2, err := r.CreateDirectory(ctx, registry.Source{}, org.GetId(), "Entra", "azure scim v2.0")
	require.NoError(t, err)
	require.NotEqual(t, nd.Token, nd2.Token)
}

func TestValidation(t *testing.T) {
	js, _ := natstest.Run(t).JetStream(t)
	r := registry.New(eventlog.New(js), event.NewIDs(), nil)
	ctx := t.Context()
	for _, domains := range [][]string{{""}, {"nodot"}, {"a..b"}, {"-a.com"}, {"a b.com"}, {"ä.com"}} {
		_, err := r.CreateOrganization(ctx, registry.Source{}, "x", domains)
		var ve *registry.ValidationError
		require.ErrorAs(t, err, &ve, domains)
	}
	_, err := r.CreateDirectory(ctx, registry.Source{}, event.NewIDs().New(event.PrefixOrganization), "x", "okta scim v2.0")
	require.ErrorIs(t, err, registry.ErrOrganizationNotFound)
}
