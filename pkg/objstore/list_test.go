package objstore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A page as AWS documents it for ListObjectsV2 (namespace, owner fields
// and all), two keys, truncated.
const awsPage = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>traces</Name>
  <Prefix>zt/</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>zt/nodes/node1/manifest.json</Key>
    <LastModified>2026-11-27T07:00:01.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>
    <Size>1234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>zt/nodes/node1/shards/h-01/000001.sst</Key>
    <LastModified>2026-11-27T07:00:00Z</LastModified>
    <ETag>"abc"</ETag>
    <Size>0</Size>
  </Contents>
</ListBucketResult>`

func TestParseList(t *testing.T) {
	p, err := ParseList([]byte(awsPage))
	if err != nil {
		t.Fatal(err)
	}
	want := ListPage{Truncated: true, Next: "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", Objects: []Object{
		{Key: "zt/nodes/node1/manifest.json", Size: 1234, ETag: "9b2cf535f27731c974343645a3985328", LastModified: time.Date(2026, 11, 27, 7, 0, 1, 0, time.UTC)},
		{Key: "zt/nodes/node1/shards/h-01/000001.sst", Size: 0, ETag: "abc", LastModified: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)},
	}}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", p, want)
	}

	for _, tc := range []struct {
		name string
		body string // raw response bytes
		err  string // "" = accepted
		keys int
	}{
		{"empty listing", `<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>`, "", 0},
		{"no IsTruncated means complete", `<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>`, "", 1},
		{"not XML", "<html>proxy error</html>", "bad ListObjectsV2 response", 0},
		{"empty body", "", "bad ListObjectsV2 response", 0},
		{"truncated XML", awsPage[:len(awsPage)/2], "bad ListObjectsV2 response", 0},
		{"wrong root element (an error body)", `<Error><Code>AccessDenied</Code></Error>`, "bad ListObjectsV2 response", 0},
		{"truncated without token", `<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`, "without a continuation token", 0},
		{"IsTruncated not a boolean", `<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>`, `IsTruncated "yes"`, 0},
		{"negative size", `<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>`, `size "-1"`, 0},
		{"size not a number", `<ListBucketResult><Contents><Key>a</Key><Size>1e9</Size></Contents></ListBucketResult>`, `size "1e9"`, 0},
		{"size beyond int64", `<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999</Size></Contents></ListBucketResult>`, "size", 0},
		{"size beyond 1 TiB", `<ListBucketResult><Contents><Key>a</Key><Size>2199023255553</Size></Contents></ListBucketResult>`, "beyond 1 TiB", 0},
		{"missing size", `<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>`, `size ""`, 0},
		{"empty key", `<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>`, "key of 0 bytes", 0},
		{"key over 1024 bytes", `<ListBucketResult><Contents><Key>` + strings.Repeat("k", 1025) + `</Key><Size>1</Size></Contents></ListBucketResult>`, "key of 1025 bytes", 0},
		{"bad date", `<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>yesterday</LastModified></Contents></ListBucketResult>`, "LastModified", 0},
		{"huge token", `<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>` + strings.Repeat("t", 5000) + `</NextContinuationToken></ListBucketResult>`, "continuation token of 5000 bytes", 0},
		{"entity expansion is not followed", `<!DOCTYPE x [<!ENTITY a "aaaa">]><ListBucketResult><Contents><Key>&a;</Key><Size>1</Size></Contents></ListBucketResult>`, "bad ListObjectsV2 response", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseList([]byte(tc.body))
			if tc.err == "" {
				if err != nil || len(p.Objects) != tc.keys {
					t.Fatalf("got %d keys, %v; want %d", len(p.Objects), err, tc.keys)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
	big := bytes.Repeat([]byte(" "), maxListBody+1)
	if _, err := ParseList(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized body: %v", err)
	}
	many := "<ListBucketResult>" + strings.Repeat("<Contents><Key>k</Key><Size>1</Size></Contents>", maxListKeys+1) + "</ListBucketResult>"
	if _, err := ParseList([]byte(many)); err == nil || !strings.Contains(err.Error(), "keys in one page") {
		t.Fatalf("too many keys: %v", err)
	}
}

func TestParseError(t *testing.T) {
	code, msg := parseError([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><RequestId>1</RequestId></Error>`))
	if code != "SignatureDoesNotMatch" || !strings.HasPrefix(msg, "The request signature") {
		t.Fatalf("got %q %q", code, msg)
	}
	if c, m := parseError([]byte("gateway timeout")); c != "" || m != "" {
		t.Fatalf("non-XML body: %q %q", c, m)
	}
}

// FuzzParseList: no input panics, accepted pages satisfy the limits.
func FuzzParseList(f *testing.F) {
	f.Add([]byte(awsPage))
	f.Add([]byte(`<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseList(b)
		parseError(b)
		if err != nil {
			return
		}
		if p.Truncated && p.Next == "" {
			t.Fatal("truncated page without a token accepted")
		}
		for _, o := range p.Objects {
			if o.Key == "" || len(o.Key) > maxKeyLen || o.Size < 0 || o.Size > maxObjectSize {
				t.Fatalf("bad object accepted: %+v", o)
			}
		}
	})
}

// BenchmarkParseList: a full page of 1000 keys, as S3 returns by default.
func BenchmarkParseList(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>`)
	for i := range 1000 {
		fmt.Fprintf(&sb, `<Contents><Key>zt/nodes/node1/shards/h-%020d/000001.sst</Key><LastModified>2026-11-27T07:00:00.000Z</LastModified><ETag>"0123456789abcdef0123456789abcdef"</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>`, i, i*1000)
	}
	sb.WriteString(`</ListBucketResult>`)
	page := []byte(sb.String())
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseList(page); err != nil {
			b.Fatal(err)
		}
	}
}
