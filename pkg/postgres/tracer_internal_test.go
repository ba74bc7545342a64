package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{name: "short", in: "SELECT 1", n: 200, want: "SELECT 1"},
		{name: "exact", in: "abcd", n: 4, want: "abcd"},
		{name: "cut", in: "abcdef", n: 4, want: "abcd"},
		{name: "no split rune", in: "ab\u00e9cd", n: 3, want: "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, truncate(tc.in, tc.n))
		})
	}
}
