package eventlog_test

import (
	"testing"

	"github.com/dsync-dev/dsync/pkg/event"
	"github.com/dsync-dev/dsync/services/gateway/internal/domain"
)

// BenchmarkAppend is one optimistic-concurrency publish; BenchmarkAppendBatch
// is a two-message atomic batch (a userName claim and its event, or a group
// change and one membership) on a real in-process JetStream server.
func BenchmarkAppend(b *testing.B) {
	log, _ := setupB(b)
	dir := ids.New(event.PrefixDirectory)
	for b.Loop() {
		user := ids.New(event.PrefixUser)
		if _, err := log.Append(b.Context(), event.UserSubject(dir, user), userEvent(dir, user, "u"), 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	log, _ := setupB(b)
	dir := ids.New(event.PrefixDirectory)
	for b.Loop() {
		u1, u2 := ids.New(event.PrefixUser), ids.New(event.PrefixUser)
		_, err := log.AppendBatch(b.Context(), []domain.Write{
			{Subject: event.UserSubject(dir, u1), Event: userEvent(dir, u1, "a")},
			{Subject: event.UserSubject(dir, u2), Event: userEvent(dir, u2, "b")},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendGuarded is one membership edge with its two read-only
// checks (the group and the user alive): a three-message atomic batch.
func BenchmarkAppendGuarded(b *testing.B) {
	log, _ := setupB(b)
	dir := ids.New(event.PrefixDirectory)
	group := event.GroupSubject(dir, ids.New(event.PrefixGroup))
	gseq, err := log.Append(b.Context(), group, userEvent(dir, "g", "g"), 0)
	if err != nil {
		b.Fatal(err)
	}
	user := event.UserSubject(dir, ids.New(event.PrefixUser))
	useq, err := log.Append(b.Context(), user, userEvent(dir, "u", "u"), 0)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		edge := ids.New(event.PrefixUser)
		_, err := log.AppendBatch(b.Context(), []domain.Write{
			{Subject: group, ExpectedSeq: gseq, Guard: true},
			{Subject: group + ".member." + edge, Event: userEvent(dir, edge, "m"), Requires: &domain.Check{Subject: user, Seq: useq}},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
