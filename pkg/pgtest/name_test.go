package pgtest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^t_[a-z0-9_]+_[0-9a-f]{12}$`)
	tests := []struct {
		name, testName, prefix string
	}{
		{name: "simple", testName: "TestFoo", prefix: "t_testfoo_"},
		{name: "subtest", testName: "TestFoo/with space-and.dots", prefix: "t_testfoo_with_space_and_dots_"},
		{name: "long", testName: strings.Repeat("X", 200), prefix: "t_" + strings.Repeat("x", 40) + "_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := databaseName(tc.testName)
			require.Regexp(t, valid, got)
			require.LessOrEqual(t, len(got), 63, "PostgreSQL identifiers are at most 63 bytes")
			require.True(t, strings.HasPrefix(got, tc.prefix), got)
			require.NotEqual(t, got, databaseName(tc.testName), "names are unique")
		})
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ base, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/db1?sslmode=disable"},
		{"postgres://u:p@h/x", "postgres://u:p@h/db1?sslmode=disable"},
		{"postgres://u@h/x?sslmode=require", "postgres://u@h/db1?sslmode=require"},
	}
	for _, tc := range tests {
		got, err := withDatabase(tc.base, "db1")
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}
