package filter

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEqualityTerms(t *testing.T) {
	tests := []struct {
		filter string
		want   []Term
	}{
		{`userName eq "Test.User@okta.local"`, []Term{{"username", "Test.User@okta.local"}}},
		{`externalId eq jyoung`, []Term{{"externalid", "jyoung"}}},
		{`id eq "x" and manager eq "y"`, []Term{{"id", "x"}, {"manager.value", "y"}}},
		{`members eq "u1"`, []Term{{"members.value", "u1"}}},
		{`members[value eq "u1"]`, []Term{{"members.value", "u1"}}},
		{`emails[type eq "work" and value eq "a@b.c"]`, []Term{{"emails.type", "work"}, {"emails.value", "a@b.c"}}},
		{`emails[type eq "work"].value eq "a@b.c"`, []Term{{"emails.type", "work"}, {"emails.value", "a@b.c"}}},
		{`emails eq "a@b.c"`, []Term{{"emails.value", "a@b.c"}}},
		{`emails.value eq "a@b.c"`, []Term{{"emails.value", "a@b.c"}}},
		{`DisplayName EQ "Eng" and active eq true`, []Term{{"displayname", "Eng"}}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`, []Term{{"manager.value", "m"}}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m"`, []Term{{"manager.value", "m"}}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "u"`, []Term{{"username", "u"}}},
		{`urn:example:Ext:1.0:User:Badge eq "b"`, []Term{{"urn:example:ext:1.0:user:badge", "b"}}},
		{`(userName eq "a" and externalId eq "b") and title pr`, []Term{{"username", "a"}, {"externalid", "b"}}},
		{`userName eq "a" or userName eq "b"`, nil},
		{`not (userName eq "a")`, nil},
		{`userName ne "a"`, nil},
		{`userName co "a"`, nil},
		{`loginCount eq 3`, nil},
		{`userName eq null`, nil},
		{`emails[type eq "work" or value eq "x"]`, nil},
		{`userName eq "a" and (externalId eq "b" or id eq "c")`, []Term{{"username", "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			e, err := Parse(tt.filter)
			require.NoError(t, err)
			require.Equal(t, tt.want, EqualityTerms(e))
		})
	}
}

func TestCaseExact(t *testing.T) {
	for path, want := range map[string]bool{
		"id": true, "externalid": true, "externalId": true, "meta.location": true,
		"members.$ref": true, "$ref": true,
		"username": false, "displayname": false, "emails.value": false, "members.value": false,
	} {
		require.Equal(t, want, CaseExact(path), path)
	}
}
