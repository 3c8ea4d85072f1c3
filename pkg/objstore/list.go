package objstore

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Object is one entry of a listing.
type Object struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// ListPage is one page of ListObjectsV2.
type ListPage struct {
	Objects   []Object
	Truncated bool
	Next      string // continuation token when Truncated
}

// Limits on listing pages; a page larger than this is refused.
const (
	maxListBody   = 16 << 20
	maxListKeys   = 10000
	maxKeyLen     = 1024
	maxTokenLen   = 4096
	maxErrorBody  = 64 << 10
	maxObjectSize = 1 << 40
)

var errList = errors.New("bad ListObjectsV2 response")

type xmlList struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	IsTruncated           string   `xml:"IsTruncated"`
	NextContinuationToken string   `xml:"NextContinuationToken"`
	Contents              []struct {
		Key          string `xml:"Key"`
		Size         string `xml:"Size"`
		ETag         string `xml:"ETag"`
		LastModified string `xml:"LastModified"`
	} `xml:"Contents"`
}

// ParseList decodes a ListObjectsV2 response body. The body is untrusted:
// its size, the number of keys, key and token lengths and every number are
// checked; anything off is an error wrapping a description of the field.
func ParseList(b []byte) (ListPage, error) {
	var p ListPage
	if len(b) > maxListBody {
		return p, fmt.Errorf("%w: %d bytes, limit %d", errList, len(b), maxListBody)
	}
	var x xmlList
	if err := xml.Unmarshal(b, &x); err != nil {
		return p, fmt.Errorf("%w: %v", errList, err)
	}
	switch strings.TrimSpace(x.IsTruncated) {
	case "true":
		p.Truncated = true
	case "false", "":
	default:
		return p, fmt.Errorf("%w: IsTruncated %q", errList, clip(x.IsTruncated))
	}
	p.Next = strings.TrimSpace(x.NextContinuationToken)
	if len(p.Next) > maxTokenLen {
		return p, fmt.Errorf("%w: continuation token of %d bytes", errList, len(p.Next))
	}
	if p.Truncated && p.Next == "" {
		return p, fmt.Errorf("%w: truncated without a continuation token", errList)
	}
	if len(x.Contents) > maxListKeys {
		return p, fmt.Errorf("%w: %d keys in one page", errList, len(x.Contents))
	}
	p.Objects = make([]Object, 0, len(x.Contents))
	for i, c := range x.Contents {
		if c.Key == "" || len(c.Key) > maxKeyLen {
			return p, fmt.Errorf("%w: entry %d: key of %d bytes", errList, i, len(c.Key))
		}
		size, err := parseSize(c.Size)
		if err != nil {
			return p, fmt.Errorf("%w: entry %d (%s): %v", errList, i, clip(c.Key), err)
		}
		o := Object{Key: c.Key, Size: size, ETag: strings.Trim(c.ETag, `"`)}
		if c.LastModified != "" {
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(c.LastModified))
			if err != nil {
				return p, fmt.Errorf("%w: entry %d (%s): LastModified %q", errList, i, clip(c.Key), clip(c.LastModified))
			}
			o.LastModified = t
		}
		p.Objects = append(p.Objects, o)
	}
	return p, nil
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 19 {
		return 0, fmt.Errorf("size %q", clip(s))
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("size %q", clip(s))
		}
		n = n*10 + int64(s[i]-'0')
	}
	if n > maxObjectSize {
		return 0, fmt.Errorf("size %d beyond 1 TiB", n)
	}
	return n, nil
}

// clip quotes at most 64 bytes of untrusted text.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// parseError reads an S3 error body; a body that is not one gives empty
// fields.
func parseError(b []byte) (code, msg string) {
	var x xmlError
	if len(b) > maxErrorBody || xml.Unmarshal(b, &x) != nil {
		return "", ""
	}
	return clip(strings.TrimSpace(x.Code)), clip(strings.TrimSpace(x.Message))
}
