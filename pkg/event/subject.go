package event

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The stream and its subject spaces. Everything that is a fact about a
// directory lives under dsync.ev.<directory_id>; organizations under
// dsync.org; uniqueness claims under dsync.idx. Consumers that build state
// from facts filter on SubjectsFacts and never see claims.
const (
	Stream = "DSYNC_EVENTS"

	SubjectAllDirectoryEvents = "dsync.ev.>"
	SubjectAllOrganizations   = "dsync.org.>"
	SubjectAllClaims          = "dsync.idx.>"
)

// SubjectsFacts are the subjects that hold events (not claims).
var SubjectsFacts = []string{SubjectAllDirectoryEvents, SubjectAllOrganizations}

// StreamSubjects are all subjects the stream captures.
var StreamSubjects = []string{SubjectAllDirectoryEvents, SubjectAllOrganizations, SubjectAllClaims}

// DirectorySubject is the subject of a directory's lifecycle events.
func DirectorySubject(directoryID string) string {
	return "dsync.ev." + directoryID + ".directory"
}

// DirectoryEventsSubject matches every event of one directory.
func DirectoryEventsSubject(directoryID string) string {
	return "dsync.ev." + directoryID + ".>"
}

// UserSubject is the subject of one user's events.
func UserSubject(directoryID, userID string) string {
	return "dsync.ev." + directoryID + ".user." + userID
}

// GroupSubject is the subject of one group's events (not its members).
func GroupSubject(directoryID, groupID string) string {
	return "dsync.ev." + directoryID + ".group." + groupID
}

// MemberSubject is the subject of one membership edge.
func MemberSubject(directoryID, groupID, userID string) string {
	return "dsync.ev." + directoryID + ".group." + groupID + ".member." + userID
}

// OrganizationSubject is the subject of one organization's events.
func OrganizationSubject(orgID string) string {
	return "dsync.org." + orgID
}

// UserNameClaimSubject is the subject that claims userName within a
// directory. userName is caseExact:false (RFC 7643 §4.1.1), so the claim is
// keyed by the lower-cased name; it is hashed because a userName may hold
// characters that are not valid in a subject token.
func UserNameClaimSubject(directoryID, userName string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(userName)))
	return "dsync.idx." + directoryID + ".username." + hex.EncodeToString(sum[:16])
}

// DirectoryIDFromSubject returns the directory id of a dsync.ev subject, or
// "" for any other subject.
func DirectoryIDFromSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, "dsync.ev.")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ".")
	return id
}
