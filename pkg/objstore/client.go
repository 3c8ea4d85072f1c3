package objstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config addresses one bucket.
type Config struct {
	Bucket string
	// Endpoint is the server's base URL, e.g. http://127.0.0.1:8333 or
	// https://s3.eu-west-1.amazonaws.com. Empty: AWS S3 of Region.
	Endpoint string
	Region   string // default us-east-1
	// PathStyle puts the bucket in the path (endpoint/bucket/key) instead of
	// the host name (bucket.endpoint/key). Most self-hosted servers need it.
	PathStyle          bool
	InsecureSkipVerify bool          // TLS: accept any server certificate (tests only)
	CAFile             string        // TLS: PEM file of extra trusted CAs
	Timeout            time.Duration // per request (default 60 s)
	Credentials        Credentials
}

// ParseURL splits s3://bucket/prefix into the bucket and a prefix that is
// empty or ends with '/'.
func ParseURL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("object store %q: want s3://bucket[/prefix]", clip(s))
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return "", "", fmt.Errorf("object store %q: %w", clip(s), err)
	}
	return bucket, CleanPrefix(prefix), nil
}

// CleanPrefix trims slashes and ends a non-empty prefix with '/'.
func CleanPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// checkBucket applies the S3 bucket naming rules that matter for URLs.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q: want 3 to 63 characters", clip(b))
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("bucket name %q: want lower-case letters, digits, '-' and '.'", b)
		}
	}
	return nil
}

// Client talks to one bucket. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client
	now  func() time.Time
}

// New checks cfg and builds a client; it does not contact the server.
func New(cfg Config) (*Client, error) {
	if err := checkBucket(cfg.Bucket); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://s3." + cfg.Region + ".amazonaws.com"
	}
	base, err := url.Parse(cfg.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("object store endpoint %q: want http(s)://host[:port]", clip(cfg.Endpoint))
	}
	if cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "" {
		return nil, ErrNoCredentials
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &Client{cfg: cfg, base: base, hc: &http.Client{Transport: tr, Timeout: cfg.Timeout}, now: time.Now}, nil
}

// Bucket is the configured bucket.
func (c *Client) Bucket() string { return c.cfg.Bucket }

// Endpoint is the configured (or default) endpoint.
func (c *Client) Endpoint() string { return c.cfg.Endpoint }

// Error is a request the server refused or that did not reach it.
type Error struct {
	Op      string // GET, PUT, HEAD, DELETE, LIST
	Key     string
	Status  int    // 0 when there was no response
	Code    string // S3 error code, e.g. NoSuchKey, SignatureDoesNotMatch
	Message string
	Err     error // transport error
}

func (e *Error) Error() string {
	where := "s3 " + e.Op
	if e.Key != "" {
		where += " " + e.Key
	}
	if e.Err != nil {
		return where + ": " + e.Err.Error()
	}
	s := fmt.Sprintf("%s: %d %s", where, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports a missing object (404, NoSuchKey).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Code == "NoSuchKey")
}

// IsAuth reports refused credentials (403, InvalidAccessKeyId,
// SignatureDoesNotMatch, AccessDenied).
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized ||
		e.Code == "InvalidAccessKeyId" || e.Code == "SignatureDoesNotMatch" || e.Code == "AccessDenied")
}

// objectURL addresses key (or the bucket when key is "").
func (c *Client) objectURL(key string, q url.Values) *url.URL {
	u := *c.base
	p := strings.TrimSuffix(u.Path, "/")
	if c.cfg.PathStyle {
		p += "/" + c.cfg.Bucket
	} else {
		u.Host = c.cfg.Bucket + "." + u.Host
	}
	p += "/" + key
	u.Path = p
	u.RawPath = uriEncode(p, false)
	if q != nil {
		u.RawQuery = canonicalQuery(q)
	}
	return &u
}

// do sends a signed request and returns the response when its status is
// 2xx; otherwise an *Error.
func (c *Client) do(ctx context.Context, op, method, key string, q url.Values, body io.ReaderAt, size int64, payloadHash string, hdr http.Header) (*http.Response, error) {
	u := c.objectURL(key, q)
	var rd io.Reader
	if body != nil {
		rd = io.NewSectionReader(body, 0, size)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, &Error{Op: op, Key: key, Err: err}
	}
	req.URL = u
	if body != nil {
		req.ContentLength = size
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(body, 0, size)), nil }
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if payloadHash == "" {
		payloadHash = EmptySHA256
	}
	signV4(req, c.cfg.Credentials, c.cfg.Region, payloadHash, c.now())
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &Error{Op: op, Key: key, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	code, msg := parseError(b)
	return nil, &Error{Op: op, Key: key, Status: resp.StatusCode, Code: code, Message: msg}
}

// Put stores size bytes of body under key; sha256Hex is their SHA-256
// (signed, so the server rejects a body that differs).
func (c *Client) Put(ctx context.Context, key string, body io.ReaderAt, size int64, sha256Hex string) error {
	resp, err := c.do(ctx, "PUT", http.MethodPut, key, nil, body, size, sha256Hex, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// PutBytes stores b under key.
func (c *Client) PutBytes(ctx context.Context, key string, b []byte) error {
	return c.Put(ctx, key, bytes.NewReader(b), int64(len(b)), hexSHA256(b))
}

// Get opens key for reading; the caller closes the body. size is the
// Content-Length (-1 when the server did not say).
func (c *Client) Get(ctx context.Context, key string) (body io.ReadCloser, size int64, err error) {
	resp, err := c.do(ctx, "GET", http.MethodGet, key, nil, nil, 0, "", nil)
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// GetBytes reads key whole; an object larger than limit is an error.
func (c *Client) GetBytes(ctx context.Context, key string, limit int64) ([]byte, error) {
	body, size, err := c.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if size > limit {
		return nil, &Error{Op: "GET", Key: key, Err: fmt.Errorf("object of %d bytes, limit %d", size, limit)}
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, &Error{Op: "GET", Key: key, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &Error{Op: "GET", Key: key, Err: fmt.Errorf("object larger than %d bytes", limit)}
	}
	return b, nil
}

// Head returns the size of key.
func (c *Client) Head(ctx context.Context, key string) (int64, error) {
	resp, err := c.do(ctx, "HEAD", http.MethodHead, key, nil, nil, 0, "", nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// Delete removes key; a missing key is not an error (S3 semantics).
func (c *Client) Delete(ctx context.Context, key string) error {
	resp, err := c.do(ctx, "DELETE", http.MethodDelete, key, nil, nil, 0, "", nil)
	if err != nil {
		if IsNotFound(err) {
			return nil
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// CreateBucket creates the bucket; one that exists and is ours is fine.
func (c *Client) CreateBucket(ctx context.Context) error {
	resp, err := c.do(ctx, "PUT", http.MethodPut, "", nil, nil, 0, "", nil)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Code == "BucketAlreadyOwnedByYou" || e.Code == "BucketAlreadyExists") {
			return nil
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// List calls fn for every object under prefix, in key order, following
// continuation tokens. pageSize 0 lets the server choose (up to 1000).
func (c *Client) List(ctx context.Context, prefix string, pageSize int, fn func(Object) error) error {
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if pageSize > 0 {
			q.Set("max-keys", strconv.Itoa(pageSize))
		}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := c.do(ctx, "LIST", http.MethodGet, "", q, nil, 0, "", nil)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody+1))
		resp.Body.Close()
		if err != nil {
			return &Error{Op: "LIST", Key: prefix, Err: err}
		}
		p, err := ParseList(b)
		if err != nil {
			return &Error{Op: "LIST", Key: prefix, Err: err}
		}
		for _, o := range p.Objects {
			if !strings.HasPrefix(o.Key, prefix) {
				return &Error{Op: "LIST", Key: prefix, Err: fmt.Errorf("%w: key %q outside the prefix", errList, clip(o.Key))}
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		if !p.Truncated {
			return nil
		}
		if p.Next == token {
			return &Error{Op: "LIST", Key: prefix, Err: fmt.Errorf("%w: continuation token repeats", errList)}
		}
		token = p.Next
	}
}
