package filter

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

var fuzzSeeds = []string{
	`userName eq "bjensen"`,
	`externalId eq jyoung`,
	`userName+eq+%22test.user%40okta.local%22&`,
	`userName+eq+"a+b@example.com"`,
	`id eq "x" and manager eq "y"`,
	`emails[type eq "work" and primary eq true]`,
	`emails[type eq "work"].value eq "a@b.c"`,
	`not (a pr) or (b gt 1.5e3 and c le "2011-05-13T04:42:34Z")`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`,
	`members.$ref ew "/Users/1"`,
	`displayName eq "a \"q\" \\ \u00e9"`,
	`a eq 1 or b eq 2 and c eq 3`,
	`a eq 1 and (b eq 2 and c eq 3)`,
	`((((a pr))))`,
	`active eq TRUE`,
	`x eq null`,
	`(a eq "x"`,
	`a eq "\ud800"`,
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			require.True(t, errors.Is(err, ErrInvalidFilter), "error %v does not wrap ErrInvalidFilter", err)
			require.Nil(t, e)
			return
		}
		canonical := e.String()
		if len(canonical) > MaxLength {
			return // quoting can lengthen a filter past the limit
		}
		again, err := Parse(canonical)
		require.NoError(t, err, "canonical form %q of %q does not parse", canonical, s)
		require.Equal(t, canonical, again.String())
		_ = EqualityTerms(e)
	})
}

func FuzzMatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	resources := []map[string]any{
		loadJSON(f, "okta_user.json"),
		loadJSON(f, "entra_user.json"),
		loadJSON(f, "group.json"),
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		for _, r := range resources {
			got := Match(e, r)
			// not(e) is the exact negation of e.
			require.Equal(t, !got, Match(&Not{Expr: e}, r))
		}
	})
}
