package scim_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsync-dev/dsync/services/gateway/internal/scim"
)

func TestParseListQuery(t *testing.T) {
	tests := []struct {
		raw     string
		want    scim.ListQuery
		errType string
	}{
		{raw: "", want: scim.ListQuery{StartIndex: 1, Count: scim.MaxResults}},
		{raw: "startIndex=0&count=-5", want: scim.ListQuery{StartIndex: 1, Count: 0}},
		{raw: "COUNT=5000&startindex=7", want: scim.ListQuery{StartIndex: 7, Count: scim.MaxResults}},
		{raw: "filter=userName+eq+%22a%22&", want: scim.ListQuery{Filter: `userName eq "a"`, StartIndex: 1, Count: scim.MaxResults}},
		{raw: "sortBy=userName&sortOrder=Descending&attributes=userName,%20name.givenName", want: scim.ListQuery{
			SortBy: "userName", SortDescending: true, StartIndex: 1, Count: scim.MaxResults, Attributes: []string{"userName", "name.givenName"}}},
		{raw: "filter=userName%20eq", errType: scim.TypeInvalidFilter},
		{raw: "count=abc", errType: scim.TypeInvalidValue},
		{raw: "count=99999999999999999999", want: scim.ListQuery{StartIndex: 1, Count: scim.MaxResults}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			q, err := url.ParseQuery(tt.raw)
			require.NoError(t, err)
			got, err := scim.ParseListQuery(q)
			if tt.errType != "" {
				var se *scim.Error
				require.ErrorAs(t, err, &se)
				require.Equal(t, tt.errType, se.ScimType)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestProject(t *testing.T) {
	res := map[string]any{
		"schemas": []any{scim.SchemaUser, scim.SchemaEnterprise}, "id": "u1", "userName": "a",
		"name":                map[string]any{"givenName": "A", "familyName": "B"},
		"emails":              []any{map[string]any{"value": "a@x", "type": "work"}},
		scim.SchemaEnterprise: map[string]any{"department": "D", "costCenter": "C"},
		"meta":                map[string]any{"created": "t"},
	}
	tests := []struct {
		name        string
		attrs, excl []string
		want        map[string]any
	}{
		{"sub-attribute", []string{"NAME.givenName"}, nil, map[string]any{"schemas": res["schemas"], "id": "u1", "name": map[string]any{"givenName": "A"}}},
		{"urn-qualified", []string{scim.SchemaEnterprise + ":department", scim.SchemaUser + ":userName"}, nil,
			map[string]any{"schemas": res["schemas"], "id": "u1", "userName": "a", scim.SchemaEnterprise: map[string]any{"department": "D"}}},
		{"multi-valued sub-attribute", []string{"emails.value"}, nil, map[string]any{"schemas": res["schemas"], "id": "u1", "emails": []any{map[string]any{"value": "a@x"}}}},
		{"excluded keeps id", nil, []string{"id", "emails", "name.familyName", "meta", scim.SchemaEnterprise}, map[string]any{
			"schemas": res["schemas"], "id": "u1", "userName": "a", "name": map[string]any{"givenName": "A"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scim.Project(res, tt.attrs, tt.excl)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPreconditionAndNoneMatch(t *testing.T) {
	require.True(t, scim.NoneMatch(`W/"7"`, `W/"7"`))
	require.True(t, scim.NoneMatch(`"7"`, `W/"7"`))
	require.True(t, scim.NoneMatch(`W/"1", W/"7"`, `W/"7"`))
	require.True(t, scim.NoneMatch(`*`, `W/"7"`))
	require.False(t, scim.NoneMatch(`W/"8"`, `W/"7"`))
	require.False(t, scim.NoneMatch(``, `W/"7"`))
}

func TestParseGroup(t *testing.T) {
	g, err := scim.ParseGroup([]byte(`{"DisplayName":" Eng ","externalId":"e1","id":"x","meta":{},"members":["u1",{"value":"u2","$ref":null},{"Value":"u3","displayName":"c"},{"value":""}]}`))
	require.NoError(t, err)
	require.Equal(t, "Eng", g.DisplayName)
	require.Equal(t, "e1", g.ExternalID)
	require.Equal(t, []string{"u1", "u2", "u3"}, g.Members)
	require.NotContains(t, g.Raw, "members")
	require.NotContains(t, g.Raw, "id")

	g, err = scim.ParseGroup([]byte(`{"displayName":"x"}`))
	require.NoError(t, err)
	require.Nil(t, g.Members, "absent members are not an empty list")

	_, err = scim.ParseGroup([]byte(`{"members":[]}`))
	var se *scim.Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, scim.TypeInvalidValue, se.ScimType)
}

func FuzzParseGroup(f *testing.F) {
	for _, s := range []string{`{"displayName":"x","members":[{"value":"a"}]}`, `{"members":"a"}`, `{"displayName":5}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		g, err := scim.ParseGroup(body)
		if err != nil {
			var se *scim.Error
			require.ErrorAs(t, err, &se)
			require.Equal(t, 400, se.Status)
			return
		}
		require.NotEmpty(t, g.DisplayName)
	})
}

func FuzzParseSearchRequest(f *testing.F) {
	for _, s := range []string{`{"filter":"userName eq \"a\"","count":"5","attributes":"a,b"}`, `{"startIndex":-1,"count":1e99}`, `{"filter":5}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := scim.ParseSearchRequest(body)
		if err != nil {
			var se *scim.Error
			require.ErrorAs(t, err, &se)
			return
		}
		require.GreaterOrEqual(t, q.StartIndex, 1)
		require.True(t, q.Count >= 0 && q.Count <= scim.MaxResults)
	})
}
