package objstore

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The four examples of the AWS documentation "Signature Calculations for
// the Authorization Header: Transferring Payload in a Single Chunk (AWS
// Signature Version 4)", Amazon S3 API Reference: same key pair, bucket
// examplebucket, region us-east-1, 2013-05-24T00:00:00Z. The signatures are
// the documented ones.
func TestSignV4AWSExamples(t *testing.T) {
	creds := Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	when := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, method, path, query string
		hdr                       map[string]string
		payload                   string
		signed, sig               string
	}{
		{name: "GET object with range", method: "GET", path: "/test.txt", hdr: map[string]string{"Range": "bytes=0-9"},
			payload: EmptySHA256, signed: "host;range;x-amz-content-sha256;x-amz-date",
			sig: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
		{name: "PUT object", method: "PUT", path: "/test$file.text",
			hdr:     map[string]string{"Date": "Fri, 24 May 2013 00:00:00 GMT", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY"},
			payload: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", // SHA-256 of "Welcome to Amazon S3."
			signed:  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
			sig:     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
		{name: "GET bucket lifecycle", method: "GET", path: "/", query: "lifecycle", payload: EmptySHA256,
			signed: "host;x-amz-content-sha256;x-amz-date",
			sig:    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		{name: "GET bucket (list objects)", method: "GET", path: "/", query: "max-keys=2&prefix=J", payload: EmptySHA256,
			signed: "host;x-amz-content-sha256;x-amz-date",
			sig:    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &url.URL{Scheme: "https", Host: "examplebucket.s3.amazonaws.com", Path: tc.path, RawQuery: tc.query}
			req, err := http.NewRequest(tc.method, u.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL = u
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			signV4(req, creds, "us-east-1", tc.payload, when)
			want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=" +
				tc.signed + ",Signature=" + tc.sig
			if got := req.Header.Get("Authorization"); got != want {
				t.Fatalf("Authorization\n got %s\nwant %s", got, want)
			}
		})
	}
	if got := hexSHA256([]byte("Welcome to Amazon S3.")); got != "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" {
		t.Fatalf("payload hash %s", got)
	}
}

func TestSignV4SessionToken(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://b.example/k", nil)
	signV4(req, Credentials{AccessKeyID: "A", SecretAccessKey: "S", SessionToken: "tok"}, "r", EmptySHA256, time.Unix(0, 0))
	if req.Header.Get("X-Amz-Security-Token") != "tok" ||
		!strings.Contains(req.Header.Get("Authorization"), "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,") {
		t.Fatalf("session token not signed: %v", req.Header)
	}
}

func TestURIEncode(t *testing.T) {
	for in, want := range map[string]string{
		"a/b c":              "a/b%20c",
		"node1/h-0001/a.sst": "node1/h-0001/a.sst",
		"ü~$+=":              "%C3%BC~%24%2B%3D",
	} {
		if got := uriEncode(in, false); got != want {
			t.Errorf("uriEncode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := uriEncode("a/b", true); got != "a%2Fb" {
		t.Errorf("slash: %q", got)
	}
}

func TestObjectURL(t *testing.T) {
	creds := Credentials{AccessKeyID: "a", SecretAccessKey: "s"}
	path, err := New(Config{Bucket: "traces", Endpoint: "http://127.0.0.1:8333", PathStyle: true, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if got := path.objectURL("p/node 1/x", nil).String(); got != "http://127.0.0.1:8333/traces/p/node%201/x" {
		t.Errorf("path style: %s", got)
	}
	vh, _ := New(Config{Bucket: "traces", Region: "eu-west-1", Credentials: creds})
	if got := vh.objectURL("k", url.Values{"list-type": {"2"}, "prefix": {"a/b"}}).String(); got != "https://traces.s3.eu-west-1.amazonaws.com/k?list-type=2&prefix=a%2Fb" {
		t.Errorf("virtual host: %s", got)
	}
	if _, err := New(Config{Bucket: "Bad_Bucket", Credentials: creds}); err == nil {
		t.Error("bad bucket name accepted")
	}
	if _, err := New(Config{Bucket: "traces"}); err != ErrNoCredentials {
		t.Errorf("no credentials: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string][2]string{
		"s3://traces":            {"traces", ""},
		"s3://traces/":           {"traces", ""},
		"s3://traces/zt/prod":    {"traces", "zt/prod/"},
		"s3://traces//zt//":      {"traces", "zt/"},
		"s3://my.bucket-1/a/b/c": {"my.bucket-1", "a/b/c/"},
	} {
		b, p, err := ParseURL(in)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", in, b, p, err, want[0], want[1])
		}
	}
	for _, bad := range []string{"", "traces", "http://traces", "s3://", "s3://ab", "s3://UPPER/x"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}
