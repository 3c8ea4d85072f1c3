package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Strings is a filter's values: JSON null, a string ("" is no value) or a
// list of strings (a multi-value template variable as the frontend sends
// it). Empty strings in a list are dropped; duplicates are kept once.
type Strings []string

// UnmarshalJSON accepts a string or a list of strings.
func (s *Strings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var out []string
	switch {
	case bytes.Equal(b, []byte("null")):
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		out = []string{v}
	default:
		if err := json.Unmarshal(b, &out); err != nil {
			return fmt.Errorf("want a string or a list of strings")
		}
	}
	*s = nil
	seen := map[string]bool{}
	for _, v := range out {
		if v != "" && !seen[v] {
			seen[v] = true
			*s = append(*s, v)
		}
	}
	return nil
}

// one is the single value of s ("" for none or several).
func (s Strings) one() string {
	if len(s) == 1 {
		return s[0]
	}
	return ""
}

// has reports whether v is one of s, or s is empty.
func (s Strings) has(v string) bool {
	if len(s) == 0 {
		return true
	}
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// codeRange is a response-code filter: one code, or a class such as 5xx.
type codeRange struct{ lo, hi int32 }

func parseCodeRange(s string) (codeRange, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if len(t) == 3 && strings.HasSuffix(t, "xx") && t[0] >= '1' && t[0] <= '9' {
		c := int32(t[0]-'0') * 100
		return codeRange{c, c + 99}, nil
	}
	n, err := strconv.ParseInt(t, 10, 32)
	if err != nil {
		return codeRange{}, fmt.Errorf("response code %s: want a code such as 503 or a class such as 5xx", short(s))
	}
	return codeRange{int32(n), int32(n)}, nil
}
