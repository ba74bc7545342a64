package patch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGolden replays the PATCH bodies of IDP-DIALECTS.md §4.1–4.5
// (testdata/golden/*.json) the way the gateway runs them: ParseRequest, then
// for groups SplitMembers, then Apply on the rest.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			var c struct {
				Schema   string
				Resource map[string]any
				Request  json.RawMessage
				Members  []MemberChange
				Expected map[string]any
				Error    *Error
			}
			require.NoError(t, json.Unmarshal(b, &c))
			ops, err := ParseRequest(c.Request)
			require.NoError(t, err)
			schema := UserSchema()
			if c.Schema == "group" {
				schema = GroupSchema()
				var members []MemberChange
				members, ops, err = SplitMembers(ops)
				require.NoError(t, err)
				if len(c.Members) == 0 {
					require.Empty(t, members)
				} else {
					require.Equal(t, c.Members, members)
				}
			}
			got, err := Apply(c.Resource, ops, schema)
			if c.Error != nil {
				var pe *Error
				require.ErrorAs(t, err, &pe)
				require.Equal(t, c.Error.ScimType, pe.ScimType)
				require.Contains(t, pe.Detail, c.Error.Detail)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.Expected, got)
		})
	}
}
