package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/zerotrace/zerotrace/pkg/objstore"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// Storage modes of a data source.
const (
	StorageDirectories = "directories"
	StorageBucket      = "bucket"
)

// Settings are the data source's jsonData (and, for the bucket's secret,
// secureJsonData).
type Settings struct {
	Storage  string   `json:"storage"` // "directories" (default) or "bucket"
	DataDirs []string `json:"dataDirs"`
	BucketSettings
	// ResidentMinutes of recent span time whose shards the reader keeps
	// verified and open ahead of queries (default 15; negative: none).
	ResidentMinutes int `json:"residentMinutes"`
	// BlockCacheMB bounds the decoded index blocks kept (default 32).
	BlockCacheMB int `json:"blockCacheMB"`
}

// readerOptions are the store reader's options from the settings.
func (s Settings) readerOptions() store.ReaderOptions {
	return store.ReaderOptions{Resident: time.Duration(max(0, s.ResidentMinutes)) * time.Minute, BlockCacheBytes: s.BlockCacheMB << 20}
}

// BucketSettings read shards from an S3-compatible bucket. The secret key
// and session token come from secureJsonData only.
type BucketSettings struct {
	Endpoint           string `json:"bucketEndpoint"`
	Bucket             string `json:"bucketName"`
	Prefix             string `json:"bucketPrefix"`
	Region             string `json:"bucketRegion"`
	AccessKeyID        string `json:"bucketAccessKeyId"`
	PathStyle          bool   `json:"bucketPathStyle"`
	InsecureSkipVerify bool   `json:"bucketInsecureSkipVerify"`
	CAFile             string `json:"bucketCAFile"`
	CacheDir           string `json:"cacheDir"`    // default <tmp>/zerotrace-cache
	CacheSizeMB        int64  `json:"cacheSizeMB"` // default 1024

	SecretAccessKey string `json:"-"` // secureJsonData.bucketSecretAccessKey
	SessionToken    string `json:"-"` // secureJsonData.bucketSessionToken
}

// secretKeys must never be in jsonData, which Grafana stores and sends to
// browsers in the clear.
var secretKeys = []string{"bucketSecretAccessKey", "bucketSessionToken", "secretAccessKey", "secretKey"}

// LoadSettings decodes jsonData and secureJsonData; no directory means
// store.DefaultDataDir.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var st Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &st); err != nil {
			return st, fmt.Errorf("reading settings: %w", err)
		}
		var raw map[string]json.RawMessage
		json.Unmarshal(s.JSONData, &raw)
		for _, k := range secretKeys {
			if _, ok := raw[k]; ok {
				return st, fmt.Errorf("reading settings: %s is in jsonData; it belongs in secureJsonData", k)
			}
		}
	}
	switch {
	case st.ResidentMinutes == 0:
		st.ResidentMinutes = 15
	case st.ResidentMinutes < 0:
		st.ResidentMinutes = -1
	}
	if st.BlockCacheMB < 0 || st.BlockCacheMB > 1<<20 {
		return st, fmt.Errorf("reading settings: blockCacheMB %d: want 1 to %d (0: 32)", st.BlockCacheMB, 1<<20)
	}
	if st.BlockCacheMB == 0 {
		st.BlockCacheMB = store.DefaultBlockCacheBytes >> 20
	}
	switch st.Storage {
	case "", StorageDirectories:
		st.Storage = StorageDirectories
	case StorageBucket:
		return st, st.loadBucket(s.DecryptedSecureJSONData)
	default:
		return st, fmt.Errorf("reading settings: storage %q: want %q or %q", st.Storage, StorageDirectories, StorageBucket)
	}
	var dirs []string
	for _, d := range st.DataDirs {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		dirs = []string{store.DefaultDataDir}
	}
	st.DataDirs = dirs
	return st, nil
}

func (b *BucketSettings) loadBucket(secure map[string]string) error {
	b.SecretAccessKey = secure["bucketSecretAccessKey"]
	b.SessionToken = secure["bucketSessionToken"]
	if b.Bucket == "" {
		return fmt.Errorf("reading settings: storage %q needs bucketName", StorageBucket)
	}
	if b.AccessKeyID != "" && b.SecretAccessKey == "" {
		return fmt.Errorf("reading settings: bucketAccessKeyId is set but secureJsonData has no bucketSecretAccessKey")
	}
	if b.CacheDir == "" {
		b.CacheDir = filepath.Join(os.TempDir(), "zerotrace-cache")
	}
	if !filepath.IsAbs(b.CacheDir) {
		return fmt.Errorf("reading settings: cacheDir %q: want an absolute path", b.CacheDir)
	}
	if b.CacheSizeMB <= 0 {
		b.CacheSizeMB = 1024
	}
	b.Prefix = objstore.CleanPrefix(b.Prefix)
	return nil
}

// objstoreConfig is the client configuration; credentials from the
// settings, else the AWS conventions of the plugin's environment.
func (b *BucketSettings) objstoreConfig() (objstore.Config, error) {
	cfg := objstore.Config{Bucket: b.Bucket, Endpoint: b.Endpoint, Region: b.Region, PathStyle: b.PathStyle,
		InsecureSkipVerify: b.InsecureSkipVerify, CAFile: b.CAFile}
	if b.AccessKeyID != "" {
		cfg.Credentials = objstore.Credentials{AccessKeyID: b.AccessKeyID, SecretAccessKey: b.SecretAccessKey,
			SessionToken: b.SessionToken, Source: "data source settings"}
		return cfg, nil
	}
	c, err := objstore.LoadCredentials(os.Getenv)
	if err != nil {
		return cfg, err
	}
	cfg.Credentials = c
	return cfg, nil
}

// URL names the bucket in messages: s3://bucket/prefix at endpoint.
func (b *BucketSettings) URL() string {
	s := "s3://" + b.Bucket + "/" + b.Prefix
	if b.Endpoint != "" {
		s += " at " + b.Endpoint
	}
	return s
}
