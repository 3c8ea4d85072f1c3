package l7

import "strings"

// RedactSQLError returns a database's error message with the statement text
// and the values it quotes replaced as NormalizeSQL replaces literals, when
// RedactSQL is set: a failed `CREATE USER … IDENTIFIED BY 'pw'` must not
// give back in its error what the statement's normalisation took out.
// MySQL and MariaDB quote the statement from the point of a syntax error
// (`… near 'BY 'pw” at line 1`, normalised) and values (`Duplicate entry
// 'x' for key …`, `Incorrect integer value: 'x' for column …`: '?');
// PostgreSQL quotes the token of a syntax error (`at or near "'pw'"`,
// normalised) and values its types refuse (`invalid input syntax for type
// integer: "x"`: "?").
func RedactSQLError(msg string) string {
	if !RedactSQL {
		return msg
	}
	if i := strings.Index(msg, " near '"); i >= 0 { // MySQL: the rest of the statement
		head, rest := msg[:i+7], msg[i+7:]
		if j := strings.LastIndex(rest, "' at line "); j >= 0 {
			return head + NormalizeSQL(rest[:j]) + rest[j:]
		}
		return head + NormalizeSQL(rest) // cut
	}
	if i := strings.Index(msg, " at or near \""); i >= 0 { // PostgreSQL: the token
		head, rest := msg[:i+13], msg[i+13:]
		if j := strings.LastIndexByte(rest, '"'); j >= 0 {
			return head + NormalizeSQL(rest[:j]) + rest[j:]
		}
		return head + NormalizeSQL(rest)
	}
	for _, q := range []struct{ open, close string }{
		{"Duplicate entry '", "' for key"}, {" value: '", "' for column"}, // MySQL
		{"invalid input syntax for type ", "\""}, {"invalid input value for enum ", "\""}, // PostgreSQL: after ": \""
	} {
		i := strings.Index(msg, q.open)
		if i < 0 {
			continue
		}
		start := i + len(q.open)
		if q.close == "\"" {
			k := strings.Index(msg[start:], ": \"")
			if k < 0 {
				continue
			}
			start += k + 3
		}
		end := strings.LastIndex(msg, q.close)
		if end < start {
			end = len(msg)
		}
		return msg[:start] + "?" + msg[end:]
	}
	return msg
}
