package readmodel

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/pkg/scim/filter"
)

func TestNarrowKey(t *testing.T) {
	for _, tt := range []struct {
		filter string
		fields keyFields
		want   Key
		ok     bool
	}{
		{`userName eq "Ada"`, userKeys, Key{KeyUserName, "Ada"}, true},
		{`USERNAME EQ "ada"`, userKeys, Key{KeyUserName, "ada"}, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`, userKeys, Key{KeyUserName, "a"}, true},
		{`userName eq "a" and externalId eq "x"`, userKeys, Key{KeyIdpID, "x"}, true},
		{`title eq "x" and (id eq "directory_user_1" and active eq true)`, userKeys, Key{KeyID, "directory_user_1"}, true},
		{`userName eq "a" or userName eq "b"`, userKeys, Key{}, false},
		{`not (userName eq "a")`, userKeys, Key{}, false},
		{`userName ne "a"`, userKeys, Key{}, false},
		{`userName sw "a"`, userKeys, Key{}, false},
		{`externalId eq 42`, userKeys, Key{}, false},
		{`emails[value eq "a@b.c"]`, userKeys, Key{KeyEmail, "a@b.c"}, true},
		{`emails[type eq "work" and value eq "a@b.c"]`, userKeys, Key{KeyEmail, "a@b.c"}, true},
		{`emails.value eq "a@b.c" and userName eq "u"`, userKeys, Key{KeyUserName, "u"}, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`, userKeys, Key{}, false},
		{`displayName eq "Eng"`, groupKeys, Key{KeyGroupName, "Eng"}, true},
		{`members[value eq "u1"]`, groupKeys, Key{KeyMember, "u1"}, true},
		{`members.value eq "u1" and displayName eq "Eng"`, groupKeys, Key{KeyMember, "u1"}, true},
		{`members eq "u1"`, groupKeys, Key{KeyMember, "u1"}, true},
		{`members[value eq "u1" or value eq "u2"]`, groupKeys, Key{}, false},
	} {
		t.Run(tt.filter, func(t *testing.T) {
			e, err := filter.Parse(tt.filter)
			require.NoError(t, err)
			got, ok := narrowKey(e, tt.fields)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
