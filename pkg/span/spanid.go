package span

import (
	"fmt"
	"strconv"
	"strings"
)

// FormatSpanID is how every surface shows a span id (trace frames, search
// results, links, the CLI): 16 lower-case hex digits, the way OpenTelemetry
// and W3C trace context print a span id, so that a span id copied from
// Zerotrace matches what logs and other tracers print.
func FormatSpanID(id uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// ParseSpanID reads a span id as users paste it: 16 hex digits (as
// FormatSpanID prints them; upper case and a 0x prefix are accepted, and
// with 0x fewer digits), or a decimal number (what Zerotrace printed before
// it printed hex). Exactly 16 characters that are all hex digits are hex,
// even if they are all decimal digits: a decimal id of exactly 16 digits
// must be written with a 0x prefix in hex instead. Zero is no span id.
func ParseSpanID(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	var (
		n   uint64
		err error
	)
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		h := s[2:]
		if len(h) == 0 || len(h) > 16 {
			return 0, fmt.Errorf("span id %q: want 1 to 16 hex digits after 0x", clip(s))
		}
		n, err = strconv.ParseUint(h, 16, 64)
	case len(s) == 16 && isHex(s):
		n, err = strconv.ParseUint(s, 16, 64)
	default:
		n, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("span id %q: want 16 hex digits or a decimal number", clip(s))
	}
	if n == 0 {
		return 0, fmt.Errorf("span id %q: zero is no span id", clip(s))
	}
	return n, nil
}

// IsHexSpanID reports whether s has the form FormatSpanID prints.
func IsHexSpanID(s string) bool { return len(s) == 16 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// clip keeps error messages short whatever was pasted.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
