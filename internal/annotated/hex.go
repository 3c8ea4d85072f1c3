// Package annotated reads the annotated hex dumps of table tests over raw
// bytes: hex digits with spaces, line breaks and "//" comments, e.g.
//
//	17 0303 0007   // application data, TLS 1.2, 7 bytes
//
// Test code only.
package annotated

import (
	"encoding/hex"
	"strings"
)

// Hex returns the bytes of an annotated hex dump; it panics on a digit that
// is not hex (a test's own constant is wrong).
func Hex(s string) []byte {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		panic("annotated hex: " + err.Error())
	}
	return out
}
