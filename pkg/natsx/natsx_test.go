package natsx_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/pkg/natsx"
	"github.com/dsync-dev/dsync/pkg/natsx/natstest"
)

func TestEnsureStreamIsIdempotentAndDurable(t *testing.T) {
	srv := natstest.Run(t)
	js, stream := srv.JetStream(t)
	again, err := natsx.EnsureStream(t.Context(), js, natsx.StreamOptions{})
	require.NoError(t, err)
	info, err := again.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, jetstream.FileStorage, info.Config.Storage)
	require.Zero(t, info.Config.MaxAge, "the event log never expires")
	require.True(t, info.Config.AllowAtomicPublish)
	require.True(t, info.Config.AllowDirect)
	require.Equal(t, stream.CachedInfo().Config.Name, event.Stream)
}

func TestLastForSubject(t *testing.T) {
	srv := natstest.Run(t)
	js, stream := srv.JetStream(t)
	dir := "directory_01HZZZZZZZZZZZZZZZZZZZZZZZ"

	msg, err := natsx.LastForSubject(t.Context(), stream, event.UserSubject(dir, "u1"))
	require.NoError(t, err)
	require.Nil(t, msg, "an unknown subject has no last message")

	_, err = js.Publish(t.Context(), event.UserSubject(dir, "u1"), []byte("one"))
	require.NoError(t, err)
	ack, err := js.Publish(t.Context(), event.UserSubject(dir, "u2"), []byte("two"))
	require.NoError(t, err)

	msg, err = natsx.LastForSubject(t.Context(), stream, event.UserSubject(dir, "u1"))
	require.NoError(t, err)
	require.Equal(t, "one", string(msg.Data))

	// The consistency token of a directory is the last sequence of any of its
	// events: a wildcard subject works for direct gets.
	msg, err = natsx.LastForSubject(t.Context(), stream, event.DirectoryEventsSubject(dir))
	require.NoError(t, err)
	require.Equal(t, ack.Sequence, msg.Sequence)
}

// The userName claim and the event are committed together or not at all.
func TestAtomicBatchRejectsWholeBatchOnClaimConflict(t *testing.T) {
	srv := natstest.Run(t)
	js, stream := srv.JetStream(t)
	dir := "directory_01HZZZZZZZZZZZZZZZZZZZZZZZ"
	batch := func(user string) []*nats.Msg {
		claim := nats.NewMsg(event.UserNameClaimSubject(dir, "Alice"))
		claim.Data = []byte(user)
		claim.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		ev := nats.NewMsg(event.UserSubject(dir, user))
		ev.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		ev.Header.Set(nats.MsgIdHdr, "event_"+user)
		return []*nats.Msg{claim, ev}
	}
	_, err := jetstreamext.PublishMsgBatch(t.Context(), js, batch("u1"))
	require.NoError(t, err)
	_, err = jetstreamext.PublishMsgBatch(t.Context(), js, batch("u2"))
	require.Error(t, err)

	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs, "the rejected batch wrote nothing")
}
