// Package workos renders dsync's state in the wire format of WorkOS
// Directory Sync (see shared/WORKOS-COMPAT.md): the REST API's objects,
// webhook and Events API envelopes, and the event names. It is the single
// place that format is written, so the REST API, the Events API and
// webhooks can never disagree.
package workos

import "time"

// TimeLayout is ISO-8601 in UTC with milliseconds, as WorkOS sends it.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in TimeLayout.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
