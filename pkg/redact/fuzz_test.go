package redact

import (
	"strings"
	"testing"
)

// planted is a secret the fuzz targets put where it must not survive.
const planted = "Zq9SeCrEtq9Z"

func sanitizeKey(k string) string {
	k = strings.Map(func(r rune) rune {
		if r < 0x80 && (isWordByte(byte(r)) || r == '-' || r == '_') {
			return r
		}
		return -1
	}, k)
	if k == "" {
		return "token"
	}
	return k
}

// FuzzRedactURL: for any resource s and key, in every mode, URL does not
// crash and only replaces parts of s with markers (what is left without
// them is in s, in order); mode None changes nothing of a string without
// '@'; a value planted after s under key goes whenever the key is
// sensitive (mode Keys) or always (mode All); a password planted in a
// URL's userinfo after s always goes.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{
		"/productpage", "/productpage?password=SECRETPW000&token=SECRETQ111", "/p?pass%77ord=x&api%5Fkey=y%26z",
		"/p?token=a&token=b&TOKEN=c", "/p?a=1;token=x;b=2", "/p?token=x#access_token=y&state=z", "/a;jsessionid=1/b;v=2?x",
		"http://u:p@h/p?q=1", "a://b://u:p@h/", "/p?next=http://u&token=x@i/", "/p?" + strings.Repeat("k=v&", 600) + "sig=s",
		"/%", "/p?%zz=1&%7", "?=&=;#", "https://@/", "/ñ?clé=é",
	} {
		f.Add(s, "token")
	}
	f.Add("/p?x=1", "X-Amz-Signature")
	f.Add("/p", "keyword")
	all, _ := New(All, nil)
	none, _ := New(None, nil)
	modes := []*Redactor{Default(), all, none}
	f.Fuzz(func(t *testing.T, s, key string) {
		if strings.Contains(s, planted) {
			return
		}
		for _, r := range modes {
			out := r.URL(s)
			if !subsequence(strings.ReplaceAll(out, Marker, ""), s) {
				t.Fatalf("mode %s: %q → %q changed more than values and userinfo", r.Mode(), s, out)
			}
			if r.Mode() == None && !strings.Contains(s, "@") && out != s {
				t.Fatalf("mode none changed %q to %q", s, out)
			}
			if out := r.URL(s + "http://user:" + planted + "@h/"); strings.Contains(out, planted) {
				t.Fatalf("mode %s: userinfo kept in %q", r.Mode(), out)
			}
		}
		k := sanitizeKey(key)
		in := s + "?" + k + "=" + planted
		if out := Default().URL(in); Default().Sensitive(k) == strings.Contains(out, planted) {
			t.Fatalf("key %q (sensitive %v): %q → %q", k, Default().Sensitive(k), in, out)
		}
		if out := all.URL(in); strings.Contains(out, planted) {
			t.Fatalf("mode all: %q → %q", in, out)
		}
	})
}

// FuzzRedactArgs: for any command line (arguments split at NUL), Args does
// not crash and only replaces parts of arguments with markers, and a password option or URL planted after
// the arguments (behind a "--" that a pending option may take as its
// value) goes.
func FuzzRedactArgs(f *testing.F) {
	for _, s := range []string{
		"curl\x00-H\x00Authorization: Bearer x\x00http://u:p@h/?token=t", "redis-cli\x00-a\x00pw", "mysql\x00-pS\x00db",
		"curl\x00-u\x00a:b", "app\x00--api-key\x00k", "env\x00TOKEN=x\x00app", "java\x00-Dx.keyStorePassword=y", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, planted) {
			return
		}
		argv := strings.Split(s, "\x00")
		out := Default().Args(argv)
		if len(out) != len(argv) {
			t.Fatalf("%d arguments → %d", len(argv), len(out))
		}
		for i := range out {
			if !subsequence(strings.ReplaceAll(out[i], Marker, ""), argv[i]) {
				t.Fatalf("argument %q → %q", argv[i], out[i])
			}
		}
		for _, p := range []string{"--password=" + planted, "http://user:" + planted + "@h/"} {
			in := append(append([]string(nil), argv...), "--", p)
			if out := Default().Cmdline(in); strings.Contains(out, planted) {
				t.Fatalf("%q → %q", in, out)
			}
		}
	})
}

// subsequence reports whether the bytes of a appear in b in order.
func subsequence(a, b string) bool {
	for i := 0; i < len(a); i++ {
		j := strings.IndexByte(b, a[i])
		if j < 0 {
			return false
		}
		b = b[j+1:]
	}
	return true
}
