package agent

import (
	"fmt"
	"log/slog"

	"github.com/zerotrace/zerotrace/pkg/bucket"
	"github.com/zerotrace/zerotrace/pkg/objstore"
)

// NewUploader builds the uploader of the configured bucket for the node's
// shards, with credentials from the AWS conventions (env is os.Getenv).
// It returns nil when no object store is configured.
func NewUploader(cfg Config, env func(string) string, log *slog.Logger) (*bucket.Uploader, error) {
	if cfg.ObjectStore.URL == "" {
		return nil, nil
	}
	c, prefix, creds, err := cfg.ObjectStoreClient(env)
	if err != nil {
		return nil, err
	}
	log.Info("object store", "url", cfg.ObjectStore.URL, "endpoint", c.Endpoint(), "credentials", creds)
	return bucket.NewUploader(bucket.UploaderOptions{Client: c, Prefix: prefix, DataDir: cfg.DataDir, Node: cfg.Node,
		Interval: cfg.ObjectStore.UploadInterval, Retention: cfg.ObjectStore.Retention, Logger: log})
}

// ObjectStoreClient is the client of the configured bucket, its prefix
// and the credentials found by the AWS conventions (env is os.Getenv).
func (c *Config) ObjectStoreClient(env func(string) string) (*objstore.Client, string, objstore.Credentials, error) {
	oc := c.ObjectStore
	name, prefix, err := objstore.ParseURL(oc.URL)
	if err != nil {
		return nil, "", objstore.Credentials{}, err
	}
	creds, err := objstore.LoadCredentials(env)
	if err != nil {
		return nil, "", creds, fmt.Errorf("object store %s: %w", oc.URL, err)
	}
	cl, err := objstore.New(objstore.Config{Bucket: name, Endpoint: oc.Endpoint, Region: oc.Region, PathStyle: oc.PathStyle,
		InsecureSkipVerify: oc.InsecureSkipVerify, CAFile: oc.CAFile, Credentials: creds})
	if err != nil {
		return nil, "", creds, fmt.Errorf("object store %s: %w", oc.URL, err)
	}
	return cl, prefix, creds, nil
}
