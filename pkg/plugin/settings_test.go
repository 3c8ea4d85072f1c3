package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestBucketSettings(t *testing.T) {
	load := func(jd string, secure map[string]string) (Settings, error) {
		return LoadSettings(backend.DataSourceInstanceSettings{JSONData: []byte(jd), DecryptedSecureJSONData: secure})
	}
	st, err := load(`{"storage":"bucket","bucketName":"zerotrace","bucketPrefix":"/cluster-a/","bucketEndpoint":"http://127.0.0.1:8333",
		"bucketAccessKeyId":"AKID","bucketPathStyle":true,"cacheDir":"/var/cache/zt","cacheSizeMB":64}`,
		map[string]string{"bucketSecretAccessKey": "sec"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Storage != StorageBucket || st.Prefix != "cluster-a/" || st.SecretAccessKey != "sec" || st.CacheSizeMB != 64 || !st.PathStyle ||
		st.URL() != "s3://zerotrace/cluster-a/ at http://127.0.0.1:8333" {
		t.Fatalf("settings %+v", st)
	}
	cfg, err := st.objstoreConfig()
	if err != nil || cfg.Credentials.AccessKeyID != "AKID" || cfg.Credentials.SecretAccessKey != "sec" {
		t.Fatalf("client config %+v %v", cfg, err)
	}
	st, err = load(`{"storage":"bucket","bucketName":"zerotrace"}`, nil)
	if err != nil || st.CacheSizeMB != 1024 || !strings.HasSuffix(st.CacheDir, "zerotrace-cache") {
		t.Fatalf("defaults %+v %v", st, err)
	}
	if o := st.readerOptions(); o.Resident != 15*time.Minute || o.BlockCacheBytes != 32<<20 {
		t.Fatalf("default reader options %+v", o)
	}
	st, err = load(`{"residentMinutes":-1,"blockCacheMB":8}`, nil)
	if o := st.readerOptions(); err != nil || o.Resident != 0 || o.BlockCacheBytes != 8<<20 {
		t.Fatalf("reader options %+v %v", o, err)
	}
	for name, tc := range map[string]struct {
		jd     string
		secure map[string]string
		err    string
	}{
		"secret in jsonData":        {`{"storage":"bucket","bucketName":"b12","bucketSecretAccessKey":"x"}`, nil, "belongs in secureJsonData"},
		"no bucket":                 {`{"storage":"bucket"}`, nil, "needs bucketName"},
		"access key without secret": {`{"storage":"bucket","bucketName":"b12","bucketAccessKeyId":"AKID"}`, nil, "no bucketSecretAccessKey"},
		"relative cache":            {`{"storage":"bucket","bucketName":"b12","cacheDir":"cache"}`, nil, "absolute"},
		"unknown storage":           {`{"storage":"nfs"}`, nil, `storage "nfs"`},
		"negative block cache":      {`{"blockCacheMB":-1}`, nil, "blockCacheMB -1"},
	} {
		if _, err := load(tc.jd, tc.secure); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", name, err, tc.err)
		}
	}
}
