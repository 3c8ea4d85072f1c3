package redact

import (
	"fmt"
	"slices"
	"strings"
)

// Marker replaces every value removed.
const Marker = "REDACTED"

// Mode says which URL parameter values are removed.
type Mode uint8

const (
	Keys Mode = iota // values of sensitive keys (the default)
	All              // every value
	None             // none (userinfo and command-line credentials still go)
)

var modeNames = [...]string{Keys: "keys", All: "all", None: "none"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode reads keys, all or none ("" is keys).
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if s == n {
			return Mode(m), nil
		}
	}
	if s == "" {
		return Keys, nil
	}
	return Keys, fmt.Errorf("redact mode %q: want keys, all or none", s)
}

// DefaultKeys are the parameter names whose values are removed unless the
// configuration removes them: credentials, tokens, signatures of pre-signed
// URLs (AWS, Google), OAuth codes and session ids.
var DefaultKeys = []string{
	"password", "passwd", "pwd", "passphrase", "secret", "client_secret", "token", "access_token", "refresh_token",
	"id_token", "authtoken", "api_key", "apikey", "key", "auth", "credential", "code", "session", "sessionid",
	"jsessionid", "phpsessid", "sig", "signature", "AWSAccessKeyId", "X-Amz-Signature", "X-Amz-Credential",
	"X-Amz-Security-Token", "X-Goog-Signature", "X-Goog-Credential",
}

// Redactor removes secrets; see the package documentation. Its methods
// are safe for concurrent use.
type Redactor struct {
	mode   Mode
	keys   map[string]bool // normalised: lower case, letters and digits only
	maxKey int
	// lens[c] has bit n set when a key of n bytes starts with c: most runs
	// of words are no key and need no map lookup.
	lens [256]uint64
}

var std = mustNew(Keys, nil)

// Default is the redactor of the default configuration: sensitive keys of
// DefaultKeys.
func Default() *Redactor { return std }

func mustNew(m Mode, edits []string) *Redactor {
	r, err := New(m, edits)
	if err != nil {
		panic(err)
	}
	return r
}

// New returns a redactor for mode with DefaultKeys edited: an edit "name"
// (or "+name") adds a key, "-name" removes one of the keys.
func New(mode Mode, edits []string) (*Redactor, error) {
	if int(mode) >= len(modeNames) {
		return nil, fmt.Errorf("redact mode %d: unknown", mode)
	}
	r := &Redactor{mode: mode, keys: map[string]bool{}}
	for _, k := range DefaultKeys {
		r.keys[normalize(k)] = true
	}
	for _, e := range edits {
		name, remove := strings.CutPrefix(e, "-")
		if !remove {
			name = strings.TrimPrefix(name, "+")
		}
		n := normalize(name)
		switch {
		case n == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "":
			return nil, fmt.Errorf("redact key %q: want letters, digits, '-', '_' or '.'", e)
		case remove && !r.keys[n]:
			return nil, fmt.Errorf("redact key %q: %q is not a redacted key", e, name)
		case remove:
			delete(r.keys, n)
		default:
			r.keys[n] = true
		}
	}
	for k := range r.keys {
		if len(k) > 63 {
			return nil, fmt.Errorf("redact key %q: longer than 63 letters and digits", k)
		}
		r.maxKey = max(r.maxKey, len(k))
		r.lens[k[0]] |= 1 << len(k)
	}
	return r, nil
}

// Mode is the redactor's mode.
func (r *Redactor) Mode() Mode { return r.mode }

// Keys are the redactor's keys, normalised (lower case, letters and digits)
// and sorted.
func (r *Redactor) Keys() []string {
	out := make([]string, 0, len(r.keys))
	for k := range r.keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// normalize is a key in lower case without anything but letters and digits.
func normalize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; isWordByte(c) {
			b.WriteByte(lower(c))
		}
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Sensitive reports whether a parameter named raw (percent-encoded as in a
// URL) holds a secret: the name, decoded and cut into words at anything
// but letters and digits and where a lower-case letter or digit meets an
// upper-case one, has a run of consecutive words that, joined in lower
// case, is a key. "X-Amz-Signature", "x_api_key", "accessToken" and
// "user[password]" are sensitive with the default keys; "keyword" and
// "author" are not. It does not allocate for names up to 64 bytes.
func (r *Redactor) Sensitive(raw string) bool {
	if one, ok := oneWord(raw); ok {
		// Most names ("page", "q", "sort"): one lower-case word, no lookup
		// unless a key of its first letter has its length.
		return one != "" && r.lens[one[0]]&(1<<len(one)) != 0 && r.keys[one]
	}
	var bufArr [64]byte
	var startArr [8]int
	buf, starts := bufArr[:0], startArr[:0]
	inWord := false
	var prev byte
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%' && i+2 < len(raw):
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if ok1 && ok2 {
				c = hi<<4 | lo
				i += 2
			}
		case c == '+':
			c = ' '
		}
		if !isWordByte(c) {
			inWord = false
			continue
		}
		if !inWord || isUpper(c) && (prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9') {
			starts = append(starts, len(buf))
		}
		inWord, prev = true, c
		buf = append(buf, lower(c))
	}
	for i, s := range starts {
		for j := i + 1; j <= len(starts); j++ {
			e := len(buf)
			if j < len(starts) {
				e = starts[j]
			}
			if e-s > r.maxKey {
				break
			}
			if r.lens[buf[s]]&(1<<(e-s)) != 0 && r.keys[string(buf[s:e])] {
				return true
			}
		}
	}
	return false
}

// oneWord returns raw when it is one word as Sensitive cuts names: lower-case
// letters and digits only, shorter than 64 bytes.
func oneWord(raw string) (string, bool) {
	if len(raw) > 63 {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return raw, true
}
