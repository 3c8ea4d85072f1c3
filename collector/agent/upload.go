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
	oc := cfg.ObjectStore
	if oc.URL == "" {
		return nil, nil
	}
	name, prefix, err := objstore.ParseURL(oc.URL)
	if err != nil {
		return nil, err
	}
	creds, err := objstore.LoadCredentials(env)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", oc.URL, err)
	}
	c, err := objstore.New(objstore.Config{Bucket: name, Endpoint: oc.Endpoint, Region: oc.Region, PathStyle: oc.PathStyle,
		InsecureSkipVerify: oc.InsecureSkipVerify, CAFile: oc.CAFile, Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", oc.URL, err)
	}
	log.Info("object store", "url", oc.URL, "endpoint", c.Endpoint(), "credentials", creds)
	return bucket.NewUploader(bucket.UploaderOptions{Client: c, Prefix: prefix, DataDir: cfg.DataDir, Node: cfg.Node,
		Interval: oc.UploadInterval, Retention: oc.Retention, Logger: log})
}
