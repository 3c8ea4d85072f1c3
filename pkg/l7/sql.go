package l7

import "strings"

// RedactSQL controls whether NormalizeSQL replaces literals with '?'. It is
// on by default: query text leaves the node and literals carry user data.
var RedactSQL = true

// NormalizeSQL returns the statement with runs of white space collapsed to
// one blank and, when RedactSQL is set, string and numeric literals replaced
// by '?'; comments are dropped. The result is at most MaxPath bytes.
func NormalizeSQL(q string) string {
	var b strings.Builder
	b.Grow(min(len(q), MaxPath))
	space := false
	prevIdent := false // the previous byte belongs to an identifier
	for i := 0; i < len(q) && b.Len() < MaxPath; i++ {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			space = b.Len() > 0
			prevIdent = false
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			space = b.Len() > 0
			prevIdent = false
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				i = len(q)
			} else {
				i += end + 3
			}
			space = b.Len() > 0
			prevIdent = false
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		switch {
		case RedactSQL && c == '\'':
			// A string literal, '' escapes a quote, backslash escapes (MySQL).
			for i++; i < len(q); i++ {
				if q[i] == '\\' {
					i++
					continue
				}
				if q[i] == '\'' {
					if i+1 < len(q) && q[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
			b.WriteByte('?')
			prevIdent = false
		case RedactSQL && !prevIdent && (c >= '0' && c <= '9' || c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9'):
			for i+1 < len(q) && (isAlnum(q[i+1]) || q[i+1] == '.') {
				i++
			}
			b.WriteByte('?')
			prevIdent = false
		default:
			b.WriteByte(c)
			prevIdent = isAlnum(c) || c == '_' || c == '$' || c >= 0x80
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// SQLVerb is the statement's first keyword in upper case ("SELECT"), or "".
func SQLVerb(q string) string {
	q = strings.TrimLeft(q, " \t\r\n(")
	i := 0
	for i < len(q) && i < 16 && (q[i] >= 'a' && q[i] <= 'z' || q[i] >= 'A' && q[i] <= 'Z') {
		i++
	}
	return strings.ToUpper(q[:i])
}
