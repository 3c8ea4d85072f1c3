package span

import (
	"strings"
	"testing"
)

func TestSpanIDFormat(t *testing.T) {
	for _, c := range []struct {
		id   uint64
		want string
	}{
		{1, "0000000000000001"},
		{0xfeedface, "00000000feedface"},
		{1<<64 - 1, "ffffffffffffffff"},
		{0x7a74000000000abc, "7a74000000000abc"},
	} {
		if got := FormatSpanID(c.id); got != c.want {
			t.Errorf("FormatSpanID(%d) = %s, want %s", c.id, got, c.want)
		}
		if back, err := ParseSpanID(c.want); err != nil || back != c.id {
			t.Errorf("ParseSpanID(%s) = %d %v, want %d", c.want, back, err, c.id)
		}
	}
}

// TestParseSpanID: what users paste, annotated.
func TestParseSpanID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		err  string
	}{
		{"00000000feedface", 0xfeedface, ""},
		{"00000000FEEDFACE", 0xfeedface, ""},             // upper case, as some log tools print
		{" 00000000feedface\n", 0xfeedface, ""},          // pasted with white space
		{"0xfeedface", 0xfeedface, ""},                   // 0x with fewer digits
		{"4277009102", 0xfeedface, ""},                   // decimal, as older versions printed
		{"18446744073709551615", 1<<64 - 1, ""},          // the largest decimal id
		{"1000000000000000", 0x1000000000000000, ""},     // 16 decimal digits are hex (documented)
		{"0x00000000000000001", 0, "1 to 16 hex digits"}, // 17 digits after 0x
		{"18446744073709551616", 0, "16 hex digits or a decimal"},
		{"000000000feedface", 0, "16 hex digits or a decimal"}, // 17 hex digits
		{"feedface", 0, "16 hex digits or a decimal"},          // short hex without 0x
		{"0000000000000000", 0, "zero"},
		{"0", 0, "zero"},
		{"", 0, "16 hex digits or a decimal"},
		{"0x", 0, "1 to 16 hex digits"},
		{strings.Repeat("9", 500), 0, "…"},
	} {
		got, err := ParseSpanID(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseSpanID(%q) = %d %v, want %d", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSpanID(%q) = %d %v, want an error with %q", c.in, got, err, c.err)
		case err != nil && len(err.Error()) > 120:
			t.Errorf("ParseSpanID: error of %d bytes", len(err.Error()))
		}
	}
}

func FuzzParseSpanID(f *testing.F) {
	for _, s := range []string{"00000000feedface", "0xff", "4277009102", "", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseSpanID(s)
		if err != nil {
			return
		}
		if id == 0 {
			t.Fatalf("%q parsed to zero", s)
		}
		if back, err := ParseSpanID(FormatSpanID(id)); err != nil || back != id {
			t.Fatalf("%q → %d → %s → %d %v", s, id, FormatSpanID(id), back, err)
		}
	})
}

func BenchmarkFormatSpanID(b *testing.B) {
	for b.Loop() {
		_ = FormatSpanID(0x7a74000000000abc)
	}
}

func BenchmarkParseSpanID(b *testing.B) {
	for b.Loop() {
		if _, err := ParseSpanID("7a74000000000abc"); err != nil {
			b.Fatal(err)
		}
	}
}
