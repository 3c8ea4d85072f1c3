package redact

import (
	"strings"
	"testing"
)

func TestSensitive(t *testing.T) {
	r := Default()
	for _, tc := range []struct {
		key  string
		want bool
		why  string
	}{
		{"password", true, "listed"},
		{"PASSWORD", true, "case-insensitive"},
		{"Pwd", true, "listed, mixed case"},
		{"api_key", true, "listed with '_'"},
		{"api-key", true, "the '-' variant of a listed key"},
		{"API-KEY", true, "upper case '-' variant"},
		{"apikey", true, "listed without separator"},
		{"apiKey", true, "camel case: words api, key"},
		{"x_api_key", true, "the word key"},
		{"X-Amz-Signature", true, "listed"},
		{"x-amz-signature", true, "listed, lower case"},
		{"X-Amz-Credential", true, "listed"},
		{"X-Amz-Security-Token", true, "listed"},
		{"X-Goog-Signature", true, "listed"},
		{"AWSAccessKeyId", true, "listed"},
		{"awsaccesskeyid", true, "listed, lower case"},
		{"client_secret", true, "listed"},
		{"clientSecret", true, "camel case of a listed key"},
		{"refresh_token", true, "listed"},
		{"accessToken", true, "camel case"},
		{"id_token", true, "listed"},
		{"user[password]", true, "bracketed word"},
		{"user.password", true, "dotted word"},
		{"my+token", true, "'+' is a space"},
		{"pass%77ord", true, "percent-encoded letter"},
		{"api%5Fkey", true, "percent-encoded '_'"},
		{"api%2dkey", true, "percent-encoded '-', lower-case hex"},
		{"code", true, "OAuth code"},
		{"sig", true, "listed"},
		{"session", true, "listed"},
		{"session_id", true, "the word session"},
		{"JSESSIONID", true, "listed"},
		{"sessionid", true, "listed"},
		{"auth", true, "listed"},
		{"keyId", true, "camel case: the word key"},
		{"oauth2_token", true, "the word token"},
		{"keyword", false, "a longer word"},
		{"author", false, "a longer word"},
		{"design", false, "sig inside a word"},
		{"monkey", false, "key inside a word"},
		{"page", false, "not listed"},
		{"u", false, "not listed"},
		{"", false, "empty"},
		{"pass%7", false, "broken escape: the bytes as they are"},
		{"%", false, "a lone percent"},
		{"toke%6E", true, "escape at the end"},
		{strings.Repeat("a_", 200) + "token", true, "past the stack buffers"},
		{strings.Repeat("x", 300), false, "long word"},
	} {
		if got := r.Sensitive(tc.key); got != tc.want {
			t.Errorf("Sensitive(%q) = %v, want %v (%s)", tc.key, got, tc.want, tc.why)
		}
	}
}

func TestURL(t *testing.T) {
	r := Default()
	for _, tc := range []struct{ in, want, why string }{
		{"/productpage", "/productpage", "no query"},
		{"/productpage?u=normal", "/productpage?u=normal", "nothing sensitive"},
		{"/productpage?password=SECRETPW000&token=SECRETQ111", "/productpage?password=REDACTED&token=REDACTED", "the issue's request"},
		{"/p?page=2&password=x&sort=asc", "/p?page=2&password=REDACTED&sort=asc", "keys around stay"},
		{"/p?Password=x", "/p?Password=REDACTED", "key case kept, value replaced"},
		{"/p?token=a&token=b&token=", "/p?token=REDACTED&token=REDACTED&token=", "repeated keys; an empty value stays"},
		{"/p?a=1;token=x;b=2", "/p?a=1;token=REDACTED;b=2", "';' separates items"},
		{"/p?token=x#frag", "/p?token=REDACTED#frag", "fragment ends the query"},
		{"/p#access_token=x&state=s", "/p#access_token=REDACTED&state=s", "OAuth implicit flow in a fragment"},
		{"/p#/route?token=x", "/p#/route?token=REDACTED", "hash routing with a query"},
		{"/p?next=/login?token=x&a=b", "/p?next=/login?token=REDACTED&a=b", "a nested query"},
		{"/p?token=a=b", "/p?token=REDACTED", "'=' in a value"},
		{"/p?pass%77ord=x", "/p?pass%77ord=REDACTED", "percent-encoded key"},
		{"/p?api%5Fkey=x%26y", "/p?api%5Fkey=REDACTED", "percent-encoded key and value"},
		{"/p?token", "/p?token", "a key without value"},
		{"/p?=x", "/p?=x", "a value without key"},
		{"/p?&&;", "/p?&&;", "empty items"},
		{"/p?", "/p?", "empty query"},
		{"/p?token=REDACTED", "/p?token=REDACTED", "already redacted"},
		{"/a;jsessionid=ABC/b?x=1", "/a;jsessionid=REDACTED/b?x=1", "path parameter"},
		{"/a;v=1.2/b", "/a;v=1.2/b", "a harmless path parameter"},
		{"/f?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature=abc123&X-Amz-Expires=60",
			"/f?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Expires=60", "pre-signed S3 URL"},
		{"/o?AWSAccessKeyId=AKIA&Expires=1&Signature=s", "/o?AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED", "S3 v2 signature"},
		{"/cb?code=4%2F0Ab&state=xyz&scope=email", "/cb?code=REDACTED&state=xyz&scope=email", "OAuth callback"},
		{"http://user:pass@example.com/p?q=1", "http://REDACTED:REDACTED@example.com/p?q=1", "userinfo of an absolute URL"},
		{"https://tok@example.com", "https://REDACTED@example.com", "userinfo without password"},
		{"https://@example.com/", "https://@example.com/", "empty userinfo"},
		{"http://a;b:c@h/x;token=y", "http://REDACTED:REDACTED@h/x;token=REDACTED", "';' inside the userinfo is not a parameter"},
		{"http://u:p@h?token=t", "http://REDACTED:REDACTED@h?token=REDACTED", "query right after the authority"},
		{"http://h/p?token=t@x", "http://h/p?token=REDACTED", "'@' in a value only"},
		{"http://h/p?next=http://u:p@i/", "http://h/p?next=http://REDACTED:REDACTED@i/", "userinfo in a nested URL"},
		{"http://h/p?next=http://u:p@i&token=t", "http://h/p?next=http://REDACTED:REDACTED@i&token=REDACTED", "nested URL, then a key"},
		{"http://h/p?next=http://u&token=x@i/", "http://h/p?next=http://REDACTED", "a nested authority and a value overlap: one marker"},
		{"a://b://user:pw@h/", "a://b://REDACTED:REDACTED@h/", "a URL whose authority ends inside the next \"://\""},
		{"/redirect/https://u:p@h/x", "/redirect/https://REDACTED:REDACTED@h/x", "a URL in the path"},
		{"ftp://user:pw@host:21/file;type=i", "ftp://REDACTED:REDACTED@host:21/file;type=i", "ftp type parameter"},
		{"/p?" + strings.Repeat("a=1&", 1000) + "token=x", "/p?" + strings.Repeat("a=1&", 1000) + "token=REDACTED", "a very long query"},
		{"/ñ?clé=é&token=é", "/ñ?clé=é&token=REDACTED", "UTF-8"},
	} {
		if got := r.URL(tc.in); got != tc.want {
			t.Errorf("%s:\nURL(%q)\n = %q\nwant %q", tc.why, tc.in, got, tc.want)
		}
	}
}

func TestModesAndKeys(t *testing.T) {
	all, err := New(All, nil)
	if err != nil {
		t.Fatal(err)
	}
	none, _ := New(None, nil)
	edited, err := New(Keys, []string{"-code", "-key", "+ssn", "Private-Key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		r        *Redactor
		in, want string
	}{
		{all, "/p?page=2&sort=&flag&token=x#f=1", "/p?page=REDACTED&sort=&REDACTED&token=REDACTED#f=REDACTED"},
		{all, "/p;v=1/x", "/p;v=REDACTED/x"},
		{all, "/p", "/p"},
		{none, "/p?token=x&page=2", "/p?token=x&page=2"},
		{none, "http://u:p@h/p?token=x", "http://REDACTED:REDACTED@h/p?token=x"},
		{edited, "/p?code=1&zip_code=2&sort_key=3&ssn=4&private_key=5&token=6",
			"/p?code=1&zip_code=2&sort_key=3&ssn=REDACTED&private_key=REDACTED&token=REDACTED"},
	} {
		if got := tc.r.URL(tc.in); got != tc.want {
			t.Errorf("mode %s: URL(%q) = %q, want %q", tc.r.Mode(), tc.in, got, tc.want)
		}
	}
	for _, edits := range [][]string{{""}, {"-"}, {"a b"}, {"-nosuchkey"}, {"to=ken"}} {
		if _, err := New(Keys, edits); err == nil {
			t.Errorf("New(%q): accepted", edits)
		}
	}
	for s, want := range map[string]Mode{"": Keys, "keys": Keys, "all": All, "none": None} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("some"); err == nil {
		t.Error("ParseMode(some): accepted")
	}
	// api_key and apikey are one key.
	if keys := Default().Keys(); len(keys) != len(DefaultKeys)-1 || keys[0] != "accesstoken" || keys[len(keys)-1] != "xgoogsignature" {
		t.Errorf("keys %q", keys)
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"productpage":            "productpage",
		"productpage:9080":       "productpage:9080",
		"user:pw@productpage":    "REDACTED:REDACTED@productpage",
		"tok@h:1":                "REDACTED@h:1",
		"a@b@h":                  "REDACTED@h",
		"REDACTED:REDACTED@host": "REDACTED:REDACTED@host",
	} {
		if got := Host(in); got != want {
			t.Errorf("Host(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoAllocation: a resource with nothing to replace is returned as it
// is, without allocating; one with secrets costs one allocation.
func TestNoAllocation(t *testing.T) {
	r := Default()
	for _, tc := range []struct {
		in     string
		allocs float64
	}{
		{"/productpage", 0},
		{"/api/v1/products/0/reviews?page=2&sort=asc&limit=50#top", 0},
		{"/a;v=1/b?" + strings.Repeat("abc=1&", 100), 0},
		{"/p?Amz-Very-Long-Parameter-Name-Of-Something-X=1", 0},
		{"/p?password=x&token=y", 1},
	} {
		if n := testing.AllocsPerRun(100, func() { r.URL(tc.in) }); n != tc.allocs {
			t.Errorf("URL(%.40q): %v allocations, want %v", tc.in, n, tc.allocs)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Host("productpage:9080") }); n != 0 {
		t.Errorf("Host: %v allocations", n)
	}
}
