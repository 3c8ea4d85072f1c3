package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestObjectStoreConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte(`
object_store:
  url: s3://yaml-bucket/zt
  endpoint: http://127.0.0.1:8333
  region: eu-west-1
  path_style: true
  ca_file: /etc/ssl/minio.pem
  retention: 168h
  upload_interval: 2s
`), 0o644)
	env := map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_OBJECT_STORE_ENDPOINT": "http://env:9000"}
	cfg, err := Load([]string{"--object-store", "s3://flag-bucket/p"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.ObjectStore
	if o.URL != "s3://flag-bucket/p" || o.Endpoint != "http://env:9000" || o.Region != "eu-west-1" || !o.PathStyle ||
		o.CAFile != "/etc/ssl/minio.pem" || o.Retention != 168*time.Hour || o.UploadInterval != 2*time.Second {
		t.Fatalf("object store config %+v", o)
	}
	if _, err := Load([]string{"--object-store", "http://not-s3"}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "object_store.url") {
		t.Fatalf("bad URL: %v", err)
	}
	// No credentials anywhere: a clear error before anything starts.
	cfg.DataDir = t.TempDir()
	cfg.ObjectStore.CAFile = ""
	_, err = NewUploader(cfg, func(k string) string { return map[string]string{"HOME": t.TempDir()}[k] }, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "no S3 credentials") {
		t.Fatalf("no credentials: %v", err)
	}
	// Credentials are logged by access key only.
	var b strings.Builder
	creds := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDLOG", "AWS_SECRET_ACCESS_KEY": "do-not-print"}
	if _, err := NewUploader(cfg, func(k string) string { return creds[k] }, slog.New(slog.NewTextHandler(&b, nil))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "AKIDLOG") || strings.Contains(b.String(), "do-not-print") {
		t.Fatalf("log: %s", b.String())
	}
}
